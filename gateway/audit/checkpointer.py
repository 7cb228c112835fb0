"""Signed checkpoints (检查点) of the audit log, written as entries arrive (SPEC 6).

A checkpoint is a C2SP tlog-checkpoint note, ``tongban/<node id>/audit``, signed with
the node's Ed25519 log key. The checkpointer keeps two promises:

* **timeliness**: no committed entry waits more than ``max_delay`` (0.5 s, inside the
  SPEC's "at least every second") for a checkpoint, and no two consecutive checkpoints
  are more than ``every`` (256) entries apart: when a group commit lands 1,000 entries
  at once, the checkpoints at each multiple of 256 inside it are signed too;
* **consistency**: before signing size ``n`` it fetches an RFC 9162 consistency proof
  from the previous *stored* checkpoint to ``n`` and verifies it against the root in
  that signed note. If the store's tree ever disagreed with what the node already
  signed, it stops with ``CheckpointRefused`` instead of signing a fork.

``on_checkpoint`` receives the newest note after each round (not every intermediate
one), so witnessing partners are asked to cosign at most once per round.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.merkle import EMPTY_ROOT, ProofError, verify_consistency
from gateway.audit.note import (
    Checkpoint,
    NoteError,
    Verifier,
    parse_checkpoint_body,
    parse_note,
    sign_note,
    verify_checkpoint,
)
from gateway.audit.store import AuditStore
from gateway.errors import GatewayError, ServiceUnavailable
from gateway.keys import log_origin

__all__ = ["CheckpointRefused", "Checkpointer", "OnCheckpoint"]

_log = structlog.get_logger(__name__)

OnCheckpoint = Callable[[bytes], Awaitable[None]]


class CheckpointRefused(GatewayError):
    """The log's tree is not consistent with a checkpoint the node already signed."""

    code = "checkpoint_inconsistent"
    status = 500
    title = "Audit checkpoint refused"


class Checkpointer:
    """Signs and stores checkpoints for one ``AuditStore``; run it as a background task.

    Use ``start()``/``stop()`` (or ``async with``) from the app's cleanup context;
    ``stop`` signs whatever is still unsigned before it returns.
    """

    def __init__(
        self,
        store: AuditStore,
        key: Ed25519PrivateKey,
        *,
        every: int = 256,
        max_delay: float = 0.5,
        on_checkpoint: OnCheckpoint | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        idle_poll: float = 1.0,
    ) -> None:
        if every < 1 or max_delay <= 0:
            raise ValueError("every must be >= 1 and max_delay > 0")
        self.store = store
        self.origin = log_origin(store.node_id)
        self._key = key
        self._verifier = Verifier.ed25519(self.origin, key.public_key())
        self.every = every
        self.max_delay = max_delay
        self.on_checkpoint = on_checkpoint
        self.idle_poll = idle_poll
        self._monotonic = monotonic
        self._signed: tuple[int, bytes] | None = None
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start ``run`` as a task."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self.run(), name="audit-checkpointer")

    async def stop(self) -> None:
        """Stop the task, then sign what is left so every committed entry is covered."""
        self._stop.set()
        if self._task is not None:
            task, self._task = self._task, None
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(ServiceUnavailable):
            await self.checkpoint_now()

    async def __aenter__(self) -> Checkpointer:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- signing ----------------------------------------------------------------------

    async def _last_signed(self) -> tuple[int, bytes]:
        """``(size, root)`` of the latest stored checkpoint, checked to be ours."""
        if self._signed is not None:
            return self._signed
        note = await self.store.latest_checkpoint()
        if note is None:
            self._signed = (0, EMPTY_ROOT)
            return self._signed
        try:
            checkpoint, _ = verify_checkpoint(note, self._verifier, origin=self.origin)
        except NoteError:
            # Stored, but not signed by this key: still the tree we must stay consistent
            # with. The store checked its root at open.
            checkpoint = parse_checkpoint_body(parse_note(note).body)
        self._signed = (checkpoint.size, checkpoint.root)
        return self._signed

    async def _sign(self, size: int) -> bytes:
        """Check consistency with the previous checkpoint, then sign and store ``size``."""
        old_size, old_root = await self._last_signed()
        root = await self.store.root_at(size)
        proof = await self.store.consistency_proof(old_size, size)
        try:
            verify_consistency(old_size, size, old_root, root, proof)
        except ProofError as exc:
            _log.critical("audit.checkpoint_refused", old_size=old_size, size=size, reason=str(exc))
            raise CheckpointRefused(
                f"the tree at size {size} is not consistent with the checkpoint signed at "
                f"size {old_size}: {exc}"
            ) from None
        note = sign_note(Checkpoint(self.origin, size, root).body(), self.origin, self._key)
        await self.store.add_checkpoint(note)
        self._signed = (size, root)
        return note

    async def checkpoint_now(self, *, upto: int | None = None) -> bytes | None:
        """Sign up to ``upto`` (default: the committed size); returns the newest note.

        Sizes at each multiple of ``every`` on the way are signed as well. Returns
        ``None`` when nothing new needed signing.
        """
        async with self._lock:
            target = self.store.size if upto is None else min(upto, self.store.size)
            signed, _ = await self._last_signed()
            if target <= signed:
                return None
            note = b""
            boundary = signed - signed % self.every + self.every
            while boundary < target:
                note = await self._sign(boundary)
                boundary += self.every
            note = await self._sign(target)
        await self._announce(note)
        return note

    async def _announce(self, note: bytes) -> None:
        if self.on_checkpoint is None:
            return
        try:
            await self.on_checkpoint(note)
        except Exception as exc:  # a partner being down must never stop checkpointing
            _log.warning("audit.checkpoint_hook_failed", error=type(exc).__name__)

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Sign checkpoints until ``stop``; raises ``CheckpointRefused`` on a fork."""
        pending_since: float | None = None
        while not self._stop.is_set():
            signed, _ = await self._last_signed()
            size = self.store.size
            if size <= signed:
                pending_since = None
                await self._wait(signed, self.idle_poll)
                # A ``tongban`` command may have appended from another process.
                with contextlib.suppress(GatewayError, sqlite3.Error):
                    await self.store.refresh()
                continue
            now = self._monotonic()
            if pending_since is None:
                pending_since = now
            boundary = size - size % self.every
            try:
                if boundary > signed:
                    await self.checkpoint_now(upto=boundary)
                    continue
                if now - pending_since >= self.max_delay:
                    await self.checkpoint_now(upto=size)
                    pending_since = None
                    continue
            except ServiceUnavailable as exc:
                # The store cannot write now; try again shortly rather than give up.
                _log.warning("audit.checkpoint_write_failed", detail=exc.detail)
                await self._wait(size, self.max_delay)
                continue
            await self._wait(size, self.max_delay - (now - pending_since))

    async def _wait(self, size: int, within: float | None) -> None:
        """Until the log grows past ``size``, ``within`` seconds pass, or ``stop``."""
        growth = asyncio.ensure_future(self.store.wait_for_growth(size, within))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({growth, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            growth.cancel()
            stop.cancel()
