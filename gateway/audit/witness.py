"""Partner nodes witness each other's logs (互为见证): C2SP tlog-witness (SPEC 6).

Witness side, ``add_checkpoint``: a partner posts ``old <size>``, a consistency proof
and its new signed checkpoint. We check, in the order tlog-witness prescribes, that
the origin is a log we witness (404), that its key signed the note (403), that the old
size is not beyond the new one (400), that the old size is the one we last cosigned
(409, with our size), that a same-size checkpoint has the same root (409: two roots for
one size is a fork), and that the proof leads from what we saw to the new root (422).
Only then do we persist the new ``(size, root)`` with a compare-and-set, and cosign.

A refusal that is evidence of rewritten history raises a ``HistoryRewritten`` subclass,
so the caller can record it in the audit log as well as answer it.

Submitter side: ``submit_checkpoint`` posts one request and returns the cosignature
lines; ``CosignatureCollector`` is the checkpointer hook that asks every partner,
retries once with the size a witness says it has, verifies each cosignature with
that partner's key and stores it with the checkpoint.

Errors (``GatewayError`` subclasses; ``latest_size`` set means the HTTP answer is 409
with ``Content-Type: text/x.tlog.size`` and body ``"<latest_size>\\n"``)::

    WitnessError
    ├── WitnessBadRequest        400 validation_failed   malformed body, old size > size
    ├── WitnessForbidden         403 forbidden           signature by the origin's key fails
    ├── WitnessUnknownLog        404 not_found           origin not witnessed here
    ├── WitnessConflict          409 conflict            old size is not ours (latest_size)
    └── HistoryRewritten         422 history_rewritten   consistency proof fails
        └── ForkedCheckpoint     409 history_rewritten   same size, other root (latest_size)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.merkle import EMPTY_ROOT, ProofError, verify_consistency
from gateway.audit.note import (
    NoteError,
    cosign,
    format_add_checkpoint,
    parse_add_checkpoint,
    parse_checkpoint_body,
    parse_note,
    parse_signature_lines,
    parse_verifier_key,
    verify_checkpoint,
    verify_cosignature,
)
from gateway.audit.store import AuditStore
from gateway.encoding import b64u_encode, json_loads
from gateway.errors import GatewayError, UpstreamError

__all__ = [
    "ADD_CHECKPOINT_PATH",
    "SIZE_CONTENT_TYPE",
    "Authorize",
    "CosignatureCollector",
    "ForkedCheckpoint",
    "HistoryRewritten",
    "WitnessBadRequest",
    "WitnessConflict",
    "WitnessError",
    "WitnessForbidden",
    "WitnessPartner",
    "WitnessUnknownLog",
    "add_checkpoint",
    "submit_checkpoint",
]

_log = structlog.get_logger(__name__)

ADD_CHECKPOINT_PATH = "/v1/witness/add-checkpoint"
SIZE_CONTENT_TYPE = "text/x.tlog.size"

Authorize = Callable[[str, str, bytes], str]
"""``(method, path_and_query, body) -> Authorization header value`` (a request token)."""


class WitnessError(GatewayError):
    """A witness request was refused; ``latest_size`` is our size for 409 answers."""

    latest_size: int | None = None


class WitnessBadRequest(WitnessError):
    code = "validation_failed"
    status = 400
    title = "Bad add-checkpoint request"


class WitnessForbidden(WitnessError):
    code = "forbidden"
    status = 403
    title = "Checkpoint signature invalid"


class WitnessUnknownLog(WitnessError):
    code = "not_found"
    status = 404
    title = "Log not witnessed here"


class WitnessConflict(WitnessError):
    code = "conflict"
    status = 409
    title = "Old size does not match"

    def __init__(self, detail: str, *, latest_size: int) -> None:
        super().__init__(detail, extra={"size": latest_size})
        self.latest_size = latest_size


class HistoryRewritten(WitnessError):
    """The log presented a checkpoint that does not extend what we witnessed before."""

    code = "history_rewritten"
    status = 422
    title = "Checkpoint inconsistent with witnessed history"

    def __init__(self, detail: str, *, origin: str, old_size: int, size: int, root: bytes) -> None:
        super().__init__(
            detail,
            extra={"origin": origin, "old_size": old_size, "size": size, "root": b64u_encode(root)},
        )
        self.origin = origin
        self.old_size = old_size
        self.size = size
        self.root = root


class ForkedCheckpoint(HistoryRewritten):
    """Two different roots for the same tree size: the clearest proof of a fork."""

    status = 409

    def __init__(self, detail: str, *, origin: str, size: int, root: bytes) -> None:
        super().__init__(detail, origin=origin, old_size=size, size=size, root=root)
        self.latest_size = size


# ---------------------------------------------------------------- witness side


async def add_checkpoint(
    store: AuditStore,
    body: bytes,
    verifiers: Mapping[str, str],
    witness_name: str,
    witness_key: Ed25519PrivateKey,
    *,
    clock: Callable[[], float] = time.time,
) -> bytes:
    """Handle a tlog-witness add-checkpoint body; returns our cosignature line(s).

    ``verifiers`` maps each witnessed log origin to its C2SP verifier key. The new
    ``(size, root)`` is persisted before the cosignature is returned.
    """
    try:
        request = parse_add_checkpoint(body)
        checkpoint = parse_checkpoint_body(parse_note(request.note).body)
    except NoteError as exc:
        raise WitnessBadRequest(f"malformed add-checkpoint request: {exc}") from None
    origin = checkpoint.origin
    vkey = verifiers.get(origin)
    if vkey is None:
        raise WitnessUnknownLog(f"this node does not witness the log {origin!r}")
    try:
        verify_checkpoint(request.note, parse_verifier_key(vkey), origin=origin)
    except NoteError as exc:
        raise WitnessForbidden(f"checkpoint of {origin} is not signed by its key: {exc}") from None
    if request.old_size > checkpoint.size:
        raise WitnessBadRequest(
            f"old size {request.old_size} is larger than the checkpoint size {checkpoint.size}"
        )
    seen = await store.witness_state(origin)
    seen_size, seen_root = seen if seen is not None else (0, EMPTY_ROOT)
    if request.old_size != seen_size:
        raise WitnessConflict(
            f"the latest checkpoint of {origin} cosigned here has size {seen_size}, "
            f"not {request.old_size}",
            latest_size=seen_size,
        )
    if checkpoint.size == seen_size:
        if checkpoint.root != seen_root:
            raise ForkedCheckpoint(
                f"{origin} presented a second, different root for size {seen_size}",
                origin=origin,
                size=seen_size,
                root=checkpoint.root,
            )
    else:
        try:
            verify_consistency(
                seen_size, checkpoint.size, seen_root, checkpoint.root, request.proof
            )
        except ProofError as exc:
            raise HistoryRewritten(
                f"checkpoint of {origin} at size {checkpoint.size} does not extend the one "
                f"cosigned at size {seen_size}: {exc}",
                origin=origin,
                old_size=seen_size,
                size=checkpoint.size,
                root=checkpoint.root,
            ) from None
        moved = await store.advance_witness_state(
            origin, seen_size, checkpoint.size, checkpoint.root, request.note
        )
        if not moved:  # another request for the same log won the race
            now = await store.witness_state(origin)
            latest = 0 if now is None else now[0]
            raise WitnessConflict(
                f"the latest checkpoint of {origin} cosigned here has size {latest}",
                latest_size=latest,
            )
    line = cosign(parse_note(request.note).body, witness_name, witness_key, int(clock()))
    return line.encode("utf-8")


# ---------------------------------------------------------------- submitter side


async def submit_checkpoint(
    session: aiohttp.ClientSession,
    partner_url: str,
    note: bytes,
    old_size: int,
    proof: Sequence[bytes],
    *,
    authorize: Authorize | None = None,
    seconds: float = 10.0,
) -> str:
    """Ask one witness to cosign ``note``; returns its cosignature line(s), unverified.

    Raises ``WitnessConflict`` (with the witness's size) on a 409 that names one, and
    ``UpstreamError`` for anything else that is not a 200.
    """
    body = format_add_checkpoint(old_size, proof, note)
    url = partner_url.rstrip("/") + ADD_CHECKPOINT_PATH
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if authorize is not None:
        # The token binds the path exactly as sent (SPEC 2 htu), prefix included.
        headers["Authorization"] = authorize("POST", urlsplit(url).path, body)
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=seconds)
        ) as resp:
            payload = await resp.read()
            status, content_type = resp.status, resp.content_type
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamError(f"witness {partner_url} unreachable ({type(exc).__name__})") from None
    if status == 200:
        try:
            parse_signature_lines(payload)
        except NoteError as exc:
            raise UpstreamError(f"witness {partner_url} answered no signature: {exc}") from None
        return payload.decode("utf-8")
    if status == 409:
        size = _conflict_size(payload, content_type)
        if size is not None:
            raise WitnessConflict(f"witness {partner_url} has size {size}", latest_size=size)
    raise UpstreamError(f"witness {partner_url} refused the checkpoint (HTTP {status})")


def _conflict_size(payload: bytes, content_type: str) -> int | None:
    """The witness's size from a 409: ``text/x.tlog.size``, or our problem+json ``size``."""
    if content_type == SIZE_CONTENT_TYPE:
        text = payload.decode("ascii", "replace").strip()
        return int(text) if text.isdecimal() and text.isascii() else None
    try:
        doc = json_loads(payload)
    except ValueError:
        return None
    size = doc.get("size") if isinstance(doc, dict) else None
    return size if type(size) is int and size >= 0 else None


@dataclass(frozen=True)
class WitnessPartner:
    """A partner that cosigns our checkpoints: where it is and its cosigner verifier key."""

    id: str
    url: str
    vkey: str


class CosignatureCollector:
    """Checkpointer hook: ask every witnessing partner to cosign, store what comes back.

    It remembers the size each witness last cosigned; a 409 teaches it the witness's
    real size and it retries once. Cosignatures are verified with the partner's key
    before they are stored; failures are logged and never stop the log.
    """

    def __init__(
        self,
        store: AuditStore,
        session: aiohttp.ClientSession,
        partners: Sequence[WitnessPartner],
        *,
        authorize: Callable[[str], Authorize | None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.session = session
        self.partners = tuple(partners)
        self._authorize = authorize
        self._timeout = timeout
        self._sizes: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {p.id: asyncio.Lock() for p in self.partners}

    async def __call__(self, note: bytes) -> None:
        await self.push(note)

    async def push(self, note: bytes) -> dict[str, str | GatewayError]:
        """Ask all partners at once; returns each partner's lines or its error."""
        results = await asyncio.gather(*(self._push_one(p, note) for p in self.partners))
        return {p.id: r for p, r in zip(self.partners, results, strict=True)}

    async def _push_one(self, partner: WitnessPartner, note: bytes) -> str | GatewayError:
        try:
            async with self._locks[partner.id]:
                return await self.cosign(partner, note)
        except GatewayError as exc:
            _log.warning(
                "audit.witness_failed", partner=partner.id, code=exc.code, detail=exc.detail
            )
            return exc

    async def cosign(self, partner: WitnessPartner, note: bytes) -> str:
        """Get, verify and store one partner's cosignature of ``note`` (the log's own note)."""
        body = parse_note(note).body
        size = parse_checkpoint_body(body).size
        verifier = parse_verifier_key(partner.vkey)
        authorize = self._authorize(partner.id) if self._authorize is not None else None
        old = min(self._sizes.get(partner.id, 0), size)
        try:
            lines = await self._submit(partner, note, old, size, authorize)
        except WitnessConflict as exc:
            # The witness knows a different size for us (it restarted, or we did):
            # prove consistency from that one instead, once.
            if exc.latest_size is None or exc.latest_size > size:
                raise
            lines = await self._submit(partner, note, exc.latest_size, size, authorize)
        try:
            for sig in parse_signature_lines(lines.encode("utf-8")):
                verify_cosignature(body, sig, verifier)
        except NoteError as exc:
            raise UpstreamError(f"witness {partner.id} sent a bad cosignature: {exc}") from None
        await self.store.add_cosignatures(size, lines)
        self._sizes[partner.id] = size
        return lines

    async def _submit(
        self, partner: WitnessPartner, note: bytes, old: int, size: int, authorize: Authorize | None
    ) -> str:
        proof = await self.store.consistency_proof(old, size) if old else []
        return await submit_checkpoint(
            self.session, partner.url, note, old, proof, authorize=authorize, seconds=self._timeout
        )
