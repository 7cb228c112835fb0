"""Per-partner adapters: one module per partner style, each with its simulator.

``make_adapter`` builds the outbound side (one ``ClientSession`` per partner);
``inbound_routes`` gives the routes through which styles that call us back in their own
format (``/adapters/<partner id>/...``) hand translated ``StatusEvent``s to the sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from adapters.base import AdapterFactory, EventSink, PartnerAdapter
from adapters.callback_guard import CallbackRoutes
from gateway.audit.events import AuditLog
from gateway.config import NodeConfig, PartnerConfig
from gateway.tokens import SigningKey


def make_adapter(
    node: NodeConfig,
    partner: PartnerConfig,
    token_key: SigningKey,
    *,
    audit: AuditLog | None = None,
) -> PartnerAdapter:
    """The adapter for ``partner.adapter`` (one ``ClientSession`` per partner).

    With ``audit`` the license calls it sends are recorded in that log (a node always
    passes its own)."""
    factories = adapter_factories()
    try:
        factory = factories[partner.adapter]
    except KeyError:
        raise ValueError(f"no adapter for partner style {partner.adapter!r}") from None
    adapter = factory(node, partner, token_key)
    if audit is None:
        return adapter
    from adapters.audited import AuditedAdapter

    return AuditedAdapter(adapter, audit, node.id)


def adapter_factories() -> dict[str, AdapterFactory]:
    """Every partner style by its ``adapter`` name in the configuration."""
    from adapters.form_async import FormAsyncAdapter
    from adapters.native import NativeAdapter
    from adapters.sharing_api import SharingApiAdapter
    from adapters.xml_envelope import XmlEnvelopeAdapter

    return {
        "native": NativeAdapter,
        "xml_envelope": XmlEnvelopeAdapter,
        "form_async": FormAsyncAdapter,
        "sharing_api": SharingApiAdapter,
    }


def inbound_factories() -> dict[str, CallbackRoutes]:
    """Styles whose partner pushes status callbacks to us (others are polled or native)."""
    from adapters import sharing_api, xml_envelope

    return {
        "xml_envelope": xml_envelope.callback_routes,
        "sharing_api": sharing_api.callback_routes,
    }


def inbound_routes(
    node: NodeConfig, sink: EventSink, *, clock: Callable[[], float] = time.time
) -> list[web.RouteDef]:
    """The callback routes of every partner of ``node`` whose style has them.

    Each is named ``adapter:<partner id>``; the handler verifies the partner's own
    signature, sets the call's audit context and hands events to ``sink(partner_id,
    event)``.
    """
    factories = inbound_factories()
    routes: list[web.RouteDef] = []
    for partner in node.partners:
        make = factories.get(partner.adapter)
        if make is not None:
            routes.extend(make(node, partner, sink, clock=clock))
    return routes


__all__ = ["EventSink", "PartnerAdapter", "adapter_factories", "inbound_routes", "make_adapter"]
