"""Status polling for partners that answer asynchronously and never call back.

Some legacy systems (Zhuzhou's, ``form_async``) take a submission, answer "pending"
and expect to be asked later. An adapter says it works this way with the attribute
``polls = True`` (read with ``getattr``, default ``False``, so the ``PartnerAdapter``
protocol needs no change); for such partners the poller asks ``poll_request`` about
every open request we delivered to them, at most once per ``interval`` each, and
applies what comes back through the same path as a callback
(``ExchangeService.apply_partner_event``): validated, idempotent, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from adapters.base import PartnerAdapter
from gateway.errors import GatewayError
from gateway.exchange.outbox import OutboxLedger
from gateway.exchange.service import ExchangeService
from gateway.logs import get_logger

__all__ = ["RequestPoller", "adapter_polls"]

_log = get_logger("tongban.exchange.poller")


def adapter_polls(adapter: PartnerAdapter) -> bool:
    """Whether this partner must be polled for status (``polls`` attribute)."""
    return bool(getattr(adapter, "polls", False))


class RequestPoller:
    """Polls polling partners about the open requests we delivered to them."""

    def __init__(
        self,
        *,
        service: ExchangeService,
        ledger: OutboxLedger,
        adapters: Mapping[str, PartnerAdapter],
        clock: Callable[[], float],
        interval: float = 5.0,
        batch: int = 100,
    ) -> None:
        self.service = service
        self.ledger = ledger
        self.adapters = adapters
        self.clock = clock
        self.interval = interval
        self.batch = batch
        self._last: dict[str, float] = {}

    async def run_once(self) -> int:
        """Poll what is due; returns how many status changes were applied."""
        polling = {pid for pid, a in self.adapters.items() if adapter_polls(a)}
        if not polling:
            return 0
        now = self.clock()
        applied = 0
        open_ids: set[str] = set()
        for record in await self.service.store.open_requests(role="accepting", limit=self.batch):
            open_ids.add(record.request_id)
            partner = record.handling_node
            if partner not in polling or now - self._last.get(record.request_id, -1e18) < (
                self.interval
            ):
                continue
            delivery = await self.ledger.get(f"submit:{record.request_id}")
            if delivery is None or delivery.state != "delivered":
                continue
            self._last[record.request_id] = now
            try:
                events = await self.adapters[partner].poll_request(record.request_id)
            except GatewayError as exc:
                _log.info(
                    "poll failed", partner=partner, request_id=record.request_id, code=exc.code
                )
                continue
            for event in events:
                if event.request_id != record.request_id:
                    continue
                try:
                    changed = await self.service.apply_partner_event(partner, event)
                except GatewayError as exc:
                    _log.warning(
                        "polled event refused", partner=partner,
                        request_id=record.request_id, code=exc.code,
                        fields=sorted(exc.extra.get("fields", {})),
                    )  # fmt: skip
                    break  # later events would build on the refused one
                applied += int(changed)
        for rid in set(self._last) - open_ids:  # finished requests: forget them
            del self._last[rid]
        return applied
