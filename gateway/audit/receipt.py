"""Offline receipts (存证回执): proof that one entry is in the signed log (SPEC 3, 6).

A receipt carries everything needed to check, with nothing but the log's public key,
that entry ``seq`` with these exact bytes is in the tree the node signed (and, with
witness keys, that partners cosigned that tree)::

    {"v": 1, "seq": k, "entry": b64u(entry bytes), "leaf": b64u(leaf hash),
     "size": n, "proof": [b64u(hash), ...], "checkpoint": "<signed note + cosignatures>",
     "vkey": "<log verifier key>"}

Binary values are unpadded base64url like every other digest in the SPEC. ``vkey`` is
informational: ``verify_receipt`` checks against the key the caller trusts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from gateway.audit.entry import Entry, EntryInvalid, parse_entry
from gateway.audit.merkle import ProofError, verify_inclusion
from gateway.audit.note import (
    SIG_COSIGNATURE_V1,
    NoteError,
    parse_note,
    parse_verifier_key,
    verify_checkpoint,
    verify_cosignature,
)
from gateway.audit.store import AuditStore
from gateway.encoding import b64u_decode, b64u_encode
from gateway.errors import GatewayError, NotFound

__all__ = ["RECEIPT_VERSION", "ReceiptInvalid", "prove", "verify_receipt"]

RECEIPT_VERSION: Final = 1
_KEYS: Final = frozenset({"v", "seq", "entry", "leaf", "size", "proof", "checkpoint", "vkey"})


class ReceiptInvalid(GatewayError):
    """A receipt does not prove what it claims; ``detail`` says which check failed."""

    code = "receipt_invalid"
    status = 400
    title = "Invalid audit receipt"


async def prove(store: AuditStore, seq: int, *, vkey: str | None = None) -> dict[str, Any]:
    """The receipt for entry ``seq`` against the latest checkpoint.

    Raises ``NotFound`` if the entry does not exist or no checkpoint covers it yet
    (checkpoints follow within a second).
    """
    data = await store.entry(seq)
    note = await store.latest_checkpoint()
    size = store.latest_checkpoint_size
    if note is None or size is None or size <= seq:
        raise NotFound(f"audit entry {seq} is not covered by a signed checkpoint yet")
    proof = await store.inclusion_proof(seq, size)
    key = vkey if vkey is not None else store.log_vkey
    if key is None:
        raise NotFound("the log verifier key is not known to this store")
    return {
        "v": RECEIPT_VERSION,
        "seq": seq,
        "entry": b64u_encode(data),
        "leaf": b64u_encode(hashlib.sha256(b"\x00" + data).digest()),
        "size": size,
        "proof": [b64u_encode(h) for h in proof],
        "checkpoint": note.decode("utf-8"),
        "vkey": key.strip(),
    }


def _field(receipt: Mapping[str, Any], key: str, kind: type) -> Any:
    value = receipt.get(key)
    if type(value) is not kind:
        raise ReceiptInvalid(f"receipt field {key!r} is missing or not a {kind.__name__}")
    return value


def _b64(text: str, what: str) -> bytes:
    try:
        return b64u_decode(text)
    except ValueError:
        raise ReceiptInvalid(f"{what} is not base64url") from None


def verify_receipt(
    receipt: Mapping[str, Any],
    vkey: str,
    *,
    witnesses: Sequence[str] = (),
    min_cosignatures: int | None = None,
) -> Entry:
    """Check a receipt against the trusted log key; return the proven entry or raise.

    With ``witnesses`` (cosigner verifier keys) the checkpoint must also carry valid
    cosignatures from ``min_cosignatures`` of them (default: all).
    """
    if not isinstance(receipt, Mapping) or set(receipt) != _KEYS:
        raise ReceiptInvalid(f"a receipt has exactly the fields {sorted(_KEYS)}")
    if receipt["v"] != RECEIPT_VERSION or type(receipt["v"]) is not int:
        raise ReceiptInvalid(f"unknown receipt version {receipt['v']!r}")
    seq = _field(receipt, "seq", int)
    size = _field(receipt, "size", int)
    data = _b64(_field(receipt, "entry", str), "entry")
    leaf = _b64(_field(receipt, "leaf", str), "leaf")
    raw_proof = _field(receipt, "proof", list)
    proof = [_b64(h, "proof hash") if isinstance(h, str) else b"" for h in raw_proof]
    note = _field(receipt, "checkpoint", str)

    if hashlib.sha256(b"\x00" + data).digest() != leaf:
        raise ReceiptInvalid("the leaf hash is not the hash of the entry bytes")
    try:
        entry = parse_entry(data)
    except EntryInvalid as exc:
        raise ReceiptInvalid(f"the entry is not a valid audit entry: {exc.detail}") from None
    if entry.seq != seq:
        raise ReceiptInvalid(f"the entry says seq {entry.seq}, the receipt {seq}")
    try:
        log = parse_verifier_key(vkey)
        checkpoint, _ = verify_checkpoint(note, log, origin=log.name)
    except NoteError as exc:
        raise ReceiptInvalid(f"the checkpoint does not verify with the log key: {exc}") from None
    if checkpoint.size != size:
        raise ReceiptInvalid(f"the checkpoint is for size {checkpoint.size}, not {size}")
    try:
        verify_inclusion(leaf, seq, size, proof, checkpoint.root)
    except ProofError as exc:
        raise ReceiptInvalid(f"the inclusion proof fails: {exc}") from None
    if witnesses:
        _check_cosignatures(note, witnesses, min_cosignatures)
    return entry


def _check_cosignatures(note: str, witnesses: Sequence[str], minimum: int | None) -> None:
    try:
        keys = [parse_verifier_key(w) for w in witnesses]
    except NoteError as exc:
        raise ReceiptInvalid(f"unusable witness key: {exc}") from None
    if any(k.sig_type != SIG_COSIGNATURE_V1 for k in keys):
        raise ReceiptInvalid("witness keys must be cosignature/v1 verifier keys")
    known = {(k.name, k.key_id): k for k in keys}
    parsed = parse_note(note)
    good: set[tuple[str, bytes]] = set()
    for sig in parsed.signatures:
        witness = known.get((sig.name, sig.key_id))
        if witness is None:
            continue
        try:
            verify_cosignature(parsed.body, sig, witness)
        except NoteError as exc:
            raise ReceiptInvalid(f"cosignature of {sig.name} does not verify: {exc}") from None
        good.add((sig.name, sig.key_id))
    need = len(keys) if minimum is None else minimum
    if len(good) < need:
        raise ReceiptInvalid(f"the checkpoint has {len(good)} witness cosignatures, {need} needed")
