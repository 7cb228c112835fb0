"""Simulators of the legacy partner systems, started by ``tongban demo`` and the tests.

One per partner style, each in ``adapters/<style>_sim.py``; they share
``adapters.sim_core`` (state in SQLite under ``data_dir``, a worker that handles
requests by itself, fault modes and ``/_sim`` hooks).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from aiohttp import web

from adapters.sim_core import SimStyle, build_sim_app
from adapters.sim_workflow import SimTiming
from gateway.config import NodeConfig

#: The simulator module of each legacy partner style.
SIMULATOR_MODULES: dict[str, str] = {
    "xml_envelope": "adapters.xml_envelope_sim",
    "form_async": "adapters.form_async_sim",
    "sharing_api": "adapters.sharing_api_sim",
}


def _style(name: str) -> tuple[SimStyle, str]:
    """``(STYLE, API_PREFIX)`` of a style's simulator module, imported on first use."""
    try:
        module = importlib.import_module(SIMULATOR_MODULES[name])
    except KeyError:
        raise ValueError(f"no simulator for partner style {name!r}") from None
    style: SimStyle = module.STYLE
    prefix: str = module.API_PREFIX
    return style, prefix


def simulator_app(
    cfg: NodeConfig,
    *,
    timing: SimTiming | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The simulator for ``cfg.simulator``'s partner style.

    ``timing`` and ``clock`` are for tests: ``SimTiming(step_seconds=0)`` works a
    request through in one go, and a manual clock with ``POST /_sim/tick`` steps it.
    """
    if cfg.simulator is None:
        raise ValueError(f"{cfg.id} is not a simulator (no [node] simulator)")
    style, prefix = _style(cfg.simulator)
    return build_sim_app(cfg, style, prefix, timing=timing or SimTiming(), clock=clock)
