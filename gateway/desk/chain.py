"""What the auditor pages read from the audit log: status, uses of a license, receipts.

Everything here is checked, not taken on trust from the store: the latest checkpoint's
signature is verified with the node's log key, each cosignature with the partner's key,
and a usage record is proven with an RFC 9162 inclusion proof against the signed root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from gateway.audit.entry import Entry, EntryInvalid, parse_entry
from gateway.audit.merkle import ProofError, leaf_hash, verify_inclusion
from gateway.audit.note import (
    Checkpoint,
    NoteError,
    Verifier,
    cosignature_timestamp,
    parse_note,
    parse_verifier_key,
    verify_checkpoint,
    verify_cosignature,
)
from gateway.config import NodeConfig
from gateway.desk.receipts import ReceiptRef
from gateway.encoding import b64u_encode
from gateway.errors import InternalError, NotFound, ValidationFailed
from gateway.keys import log_origin

MAX_USES = 1000
"""The most entries one search shows (newest first); the page says when there are more."""


@runtime_checkable
class AuditReader(Protocol):
    """The read side of the audit store that the auditor pages use."""

    @property
    def size(self) -> int: ...

    def root(self) -> bytes: ...

    def pseudonym(self, value: str) -> str: ...

    async def latest_checkpoint(self) -> bytes | None: ...

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...

    async def entry(self, seq: int) -> bytes: ...

    async def entries_for_subject(self, pseudonym: str) -> list[tuple[int, bytes]]: ...


def reader_of(log: object) -> AuditReader:
    """The log as an ``AuditReader``; an internal error if the node's log cannot be read."""
    if not isinstance(log, AuditReader):
        raise InternalError("the audit log of this node offers no read access")
    return log


@dataclass(frozen=True)
class Cosignature:
    partner: str
    partner_name: str
    size: int
    time: int
    verified: bool


@dataclass(frozen=True)
class ChainStatus:
    size: int
    root: bytes
    checkpoint: Checkpoint | None
    note: str | None
    checkpoint_time: str | None
    age_seconds: int | None
    cosignatures: tuple[Cosignature, ...]

    def to_json(self) -> dict[str, Any]:
        cp = None
        if self.checkpoint is not None:
            cp = {
                "size": self.checkpoint.size,
                "root": b64u_encode(self.checkpoint.root),
                "note": self.note,
                "time": self.checkpoint_time,
                "age_seconds": self.age_seconds,
                "cosignatures": [
                    {
                        "partner": c.partner,
                        "partner_name": c.partner_name,
                        "size": c.size,
                        "time": _iso(c.time),
                        "verified": c.verified,
                    }
                    for c in self.cosignatures
                ],
            }
        return {"size": self.size, "root": b64u_encode(self.root), "checkpoint": cp}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(ts: str) -> float:
    """Seconds since the epoch of an entry's ``ts`` (RFC 3339 UTC with microseconds)."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def log_verifier(cfg: NodeConfig) -> Verifier:
    """This node's checkpoint key (C2SP verifier key in ``certs/<node>/log.vkey``)."""
    path = cfg.node_certs / "log.vkey"
    try:
        return parse_verifier_key(path.read_text(encoding="utf-8"))
    except (OSError, NoteError) as exc:
        raise InternalError("the node's log verifier key cannot be read") from exc


async def signed_checkpoint(cfg: NodeConfig, log: AuditReader) -> tuple[Checkpoint, str] | None:
    """The latest checkpoint, its log signature verified; ``None`` before the first."""
    note = await log.latest_checkpoint()
    if note is None:
        return None
    try:
        checkpoint, _ = verify_checkpoint(note, log_verifier(cfg), origin=log_origin(cfg.id))
    except NoteError as exc:
        raise InternalError(f"the stored checkpoint does not verify: {exc}") from exc
    return checkpoint, note.decode("utf-8")


def _cosignatures(cfg: NodeConfig, checkpoint: Checkpoint, note: str) -> tuple[Cosignature, ...]:
    """Cosignature lines on the note, each matched to a partner and verified if possible."""
    own = log_verifier(cfg)
    out: list[Cosignature] = []
    body = checkpoint.body()
    for sig in parse_note(note).signatures:
        if (sig.name, sig.key_id) == (own.name, own.key_id):
            continue
        partner = next((p for p in cfg.partners if p.id in sig.name), None)
        verified = False
        if partner is not None and partner.log_vkey:
            try:
                key = parse_verifier_key(partner.log_vkey).public_key
                verify_cosignature(body, sig, Verifier.cosigner(sig.name, key))
                verified = True
            except NoteError:
                verified = False
        try:
            stamp = cosignature_timestamp(sig)
        except NoteError:
            continue
        out.append(
            Cosignature(
                partner=partner.id if partner else sig.name,
                partner_name=partner.name if partner else "",
                size=checkpoint.size,
                time=stamp,
                verified=verified,
            )
        )
    return tuple(out)


async def chain_status(cfg: NodeConfig, log: AuditReader, *, now: float) -> ChainStatus:
    """Size, root, the latest signed checkpoint, its age and the partners' cosignatures.

    A C2SP checkpoint carries no time of its own; its time here is that of the last
    entry it covers (checkpoints are signed within a second of their last entry).
    """
    size, root = log.size, log.root()
    signed = await signed_checkpoint(cfg, log)
    if signed is None:
        return ChainStatus(size, root, None, None, None, None, ())
    checkpoint, note = signed
    stamp: str | None = None
    age: int | None = None
    if checkpoint.size > 0:
        last = parse_entry(await log.entry(checkpoint.size - 1))
        stamp = last.ts
        age = max(0, int(now - _epoch(last.ts)))
    return ChainStatus(
        size, root, checkpoint, note, stamp, age, _cosignatures(cfg, checkpoint, note)
    )


def entry_summary(entry: Entry) -> dict[str, Any]:
    """What an auditor sees of one entry (it holds only pseudonyms and digests already)."""
    return {
        "seq": entry.seq,
        "ts": entry.ts,
        "event": entry.event,
        "actor": {"type": entry.actor.type, "id": entry.actor.id, "sub": entry.actor.sub},
        "outcome": entry.outcome,
        "code": entry.code,
        "meta": dict(entry.meta),
    }


async def uses_of(log: AuditReader, identifier: str) -> tuple[list[dict[str, Any]], bool]:
    """Every entry about a license or holder (by its keyed pseudonym), newest first.

    Returns the summaries (at most ``MAX_USES``) and whether there were more.
    """
    found = await log.entries_for_subject(log.pseudonym(identifier))
    found.sort(key=lambda row: row[0], reverse=True)
    return [entry_summary(parse_entry(data)) for _, data in found[:MAX_USES]], (
        len(found) > MAX_USES
    )


@dataclass(frozen=True)
class ReceiptCheck:
    """The outcome of checking a usage record against the chain."""

    state: Literal["included", "pending", "mismatch"]
    ref: ReceiptRef
    checkpoint: Checkpoint | None
    entry: Entry | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "included": self.state == "included",
            "pending": self.state == "pending",
            "state": self.state,
            "detail": self.detail,
            "ref": self.ref.text(),
            "seq": self.ref.seq,
            "leaf": b64u_encode(self.ref.leaf),
            "checkpoint": None
            if self.checkpoint is None
            else {"size": self.checkpoint.size, "root": b64u_encode(self.checkpoint.root)},
            "entry": entry_summary(self.entry) if self.entry is not None else None,
        }


async def check_receipt(cfg: NodeConfig, log: AuditReader, ref: ReceiptRef) -> ReceiptCheck:
    """Prove that the referenced entry is in the log under the latest signed checkpoint.

    ``pending`` when the entry is newer than that checkpoint (one is signed at least
    every second); ``mismatch`` when the log's entry at that position has another leaf
    hash, which means the paper record or the log was altered.
    """
    if ref.node != cfg.id:
        raise ValidationFailed(
            "the record belongs to another node's log",
            fields={"ref": f"recorded at {ref.node}; check it at that node"},
        )
    signed = await signed_checkpoint(cfg, log)
    if signed is None or ref.seq >= signed[0].size:
        if ref.seq >= log.size:
            raise NotFound(f"the log has no entry {ref.seq}")
        cp = signed[0] if signed else None
        return ReceiptCheck("pending", ref, cp, None, "not yet covered by a signed checkpoint")
    checkpoint, _ = signed
    data = await log.entry(ref.seq)
    try:
        entry: Entry | None = parse_entry(data)
    except EntryInvalid:
        entry = None
    if leaf_hash(data) != ref.leaf:
        return ReceiptCheck(
            "mismatch", ref, checkpoint, None, "the log's entry at this seq has another leaf hash"
        )
    proof: Sequence[bytes] = await log.inclusion_proof(ref.seq, checkpoint.size)
    try:
        verify_inclusion(ref.leaf, ref.seq, checkpoint.size, proof, checkpoint.root)
    except ProofError as exc:
        return ReceiptCheck("mismatch", ref, checkpoint, entry, f"inclusion proof fails: {exc}")
    return ReceiptCheck(
        "included", ref, checkpoint, entry, "included under the latest signed checkpoint"
    )
