"""Asking the issuing node for a license's status, with a short cache (SPEC 4.3).

The issuing node is the authority on status. The verifier finds it from the
license's ``issuer.code``: itself when the code is its own issuer's, otherwise the
partner whose configuration lists that USCC, reached through that partner's adapter.

Answers ``valid``, ``revoked`` and ``suspended`` are cached for
``status_cache_seconds`` (default 60 s), so a revocation reaches a verifier within that
window. "Never issued" and "could not ask" are not cached: the first may be a license
issued a moment ago, the second should be retried at once by the next scan. Nothing
here ever turns a failure into a status: an unreachable issuer is ``unknown``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from adapters.base import PartnerAdapter
from gateway.config import NodeConfig
from gateway.errors import GatewayError, NotFound
from gateway.licenses.status import LicenseStatus, StatusAnswer
from gateway.licenses.store import AsyncLicenseStore

__all__ = ["StatusResolver"]

DEFAULT_TIMEOUT = 3.0
"""Longest a verification waits for a partner's status answer, in seconds.

Well inside what a caller waits for us (``gateway.http.client.DEFAULT_TIMEOUT``, 10 s;
a desk, less): a hanging issuer must turn into ``undetermined`` while someone is still
there to read it."""


class StatusResolver:
    """Finds and asks the issuing node; caches what it says for a short while.

    ``clock`` (monotonic seconds) is public so tests can move time instead of sleeping.
    """

    def __init__(
        self,
        *,
        cfg: NodeConfig,
        adapters: Mapping[str, PartnerAdapter],
        local: AsyncLicenseStore,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = DEFAULT_TIMEOUT,
        max_entries: int = 10_000,
    ) -> None:
        self._cfg = cfg
        self._adapters = adapters
        self._local = local
        self.ttl = cfg.status_cache_seconds if ttl is None else ttl
        self.clock = clock
        self._timeout = timeout
        self._max = max_entries
        self._cache: OrderedDict[str, tuple[float, LicenseStatus, str]] = OrderedDict()

    async def lookup(self, identifier: str, issuer_code: str) -> StatusAnswer:
        """The status of ``identifier``, whose issuing authority is ``issuer_code``."""
        if issuer_code == self._cfg.issuer_uscc:
            try:
                status = await self._local.status(identifier)
            except NotFound:
                return StatusAnswer("not_issued", self._cfg.id)
            return StatusAnswer("known", self._cfg.id, status)
        partner = self._cfg.partner_for_issuer(issuer_code)
        if partner is None:
            return StatusAnswer(
                "unknown",
                "-",
                detail=f"no partner of {self._cfg.id} answers for issuer {issuer_code}",
            )
        cached = self._cached(identifier)
        if cached is not None:
            return cached
        adapter = self._adapters.get(partner.id)
        if adapter is None:
            return StatusAnswer(
                "unknown", partner.id, detail=f"no adapter is running for {partner.id}"
            )
        try:
            async with asyncio.timeout(self._timeout):
                status = await adapter.license_status(identifier)
        except NotFound:
            return StatusAnswer("not_issued", partner.id)
        except TimeoutError:
            return StatusAnswer("unknown", partner.id, detail=f"{partner.id} did not answer")
        except GatewayError as exc:
            # Whatever went wrong, the issuer has not told us a status.
            return StatusAnswer(
                "unknown", partner.id, detail=f"{partner.id} could not be asked ({exc.code})"
            )
        self._remember(identifier, status, partner.id)
        return StatusAnswer("known", partner.id, status)

    def _cached(self, identifier: str) -> StatusAnswer | None:
        entry = self._cache.get(identifier)
        if entry is None:
            return None
        expires, status, source = entry
        if self.clock() >= expires:
            del self._cache[identifier]
            return None
        self._cache.move_to_end(identifier)
        return StatusAnswer("known", source, status, cached=True)

    def _remember(self, identifier: str, status: LicenseStatus, source: str) -> None:
        if self.ttl <= 0:
            return
        self._cache[identifier] = (self.clock() + self.ttl, status, source)
        self._cache.move_to_end(identifier)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
