"""Structured logs: JSON lines, one canonical line per request, request id from contextvars.

Identity numbers and names never reach a log line in clear: callers log masked values
(``gateway.privacy``), and the ``_scrub`` processor masks anything that still looks like
an 18-character resident identity number as a last line of defence.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_ID_RE = re.compile(r"\b(\d{4})\d{10}(\d{3}[\dXx])\b")


def _scrub(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and len(value) >= 18:
            event_dict[key] = _ID_RE.sub(r"\1**********\2", value)
    return event_dict


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", *, stream: Any = None, cache: bool = True) -> None:
    """Set up structlog once per process; JSON rendered once per line.

    ``cache=False`` is for tests, where ``structlog.testing.capture_logs`` must be able to
    swap the processors of loggers that were already used.
    """
    logging.basicConfig(format="%(message)s", stream=stream or _Stderr(), level=level)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _scrub,  # before the timestamp, which it would only have to look at
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or _Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=cache,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
