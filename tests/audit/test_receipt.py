"""Offline receipts: an entry, its inclusion proof and the signed checkpoint, checkable alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.note import (
    Checkpoint,
    cosign,
    cosigner_verifier_key,
    parse_checkpoint_body,
    parse_note,
    sign_note,
    verifier_key,
)
from gateway.audit.receipt import ReceiptInvalid, prove, verify_receipt
from gateway.audit.store import AuditStore
from gateway.encoding import b64u_decode, b64u_encode
from gateway.errors import NotFound
from gateway.keys import log_origin

from .conftest import NODE, fill, fill_and_sign

WITNESS = "tongban/cn-330800/witness"


async def test_receipt_round_trip(store: AuditStore, log_key: Ed25519PrivateKey, vkey: str) -> None:
    await fill_and_sign(store, log_key, 333)
    for seq in (0, 1, 100, 255, 256, 332):
        receipt = json.loads(json.dumps(await prove(store, seq)))
        entry = verify_receipt(receipt, vkey)
        assert entry.seq == seq
        assert b64u_decode(receipt["entry"]) == await store.entry(seq)
        assert receipt["size"] == 333 and receipt["vkey"] == vkey


async def test_entry_not_yet_covered(store: AuditStore, log_key: Ed25519PrivateKey) -> None:
    await fill(store, 5)
    with pytest.raises(NotFound):
        await prove(store, 0)
    await Checkpointer(store, log_key).checkpoint_now()
    await fill(store, 1, start=5)
    with pytest.raises(NotFound):
        await prove(store, 5)
    with pytest.raises(NotFound):
        await prove(store, 99)


def _flip_b64(text: str) -> str:
    raw = bytearray(b64u_decode(text))
    raw[len(raw) // 2] ^= 1
    return b64u_encode(bytes(raw))


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: r.update(entry=_flip_b64(r["entry"])), id="entry"),
        pytest.param(lambda r: r.update(leaf=_flip_b64(r["leaf"])), id="leaf"),
        pytest.param(lambda r: r["proof"].__setitem__(0, _flip_b64(r["proof"][0])), id="proof"),
        pytest.param(lambda r: r["proof"].pop(), id="short-proof"),
        pytest.param(lambda r: r.update(seq=r["seq"] + 1), id="seq"),
        pytest.param(lambda r: r.update(size=r["size"] - 1), id="size"),
        pytest.param(lambda r: r.update(v=2), id="version"),
        pytest.param(lambda r: r.pop("vkey"), id="missing-field"),
        pytest.param(lambda r: r.update(extra=1), id="extra-field"),
        pytest.param(lambda r: r.update(entry="not base64!"), id="bad-base64"),
        pytest.param(lambda r: r.update(seq="3"), id="seq-type"),
        pytest.param(
            lambda r: r.update(checkpoint=r["checkpoint"].replace("\n300\n", "\n301\n")),
            id="checkpoint-text",
        ),
    ],
)
async def test_tampered_receipts_are_refused(
    store: AuditStore, log_key: Ed25519PrivateKey, vkey: str, tamper: Any
) -> None:
    await fill_and_sign(store, log_key, 300)
    receipt = await prove(store, 123)
    tamper(receipt)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(receipt, vkey)


async def test_receipt_against_another_key_or_a_forged_checkpoint(
    store: AuditStore, log_key: Ed25519PrivateKey, vkey: str
) -> None:
    await fill_and_sign(store, log_key, 64)
    receipt = await prove(store, 10)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(ReceiptInvalid):
        verify_receipt(receipt, verifier_key(log_origin(NODE), other.public_key()))
    forged = dict(receipt)
    body = parse_note(receipt["checkpoint"]).body
    forged["checkpoint"] = sign_note(body, log_origin(NODE), other).decode()
    with pytest.raises(ReceiptInvalid):
        verify_receipt(forged, vkey)
    # A correctly signed checkpoint for a different root does not prove the entry.
    fake_root = sign_note(
        Checkpoint(log_origin(NODE), 64, bytes(32)).body(), log_origin(NODE), log_key
    )
    with pytest.raises(ReceiptInvalid):
        verify_receipt({**receipt, "checkpoint": fake_root.decode()}, vkey)


async def test_receipt_with_required_witnesses(
    store: AuditStore, log_key: Ed25519PrivateKey, vkey: str
) -> None:
    await fill_and_sign(store, log_key, 20)
    witness = Ed25519PrivateKey.generate()
    witness_vkey = cosigner_verifier_key(WITNESS, witness.public_key())
    receipt = await prove(store, 3)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(receipt, vkey, witnesses=[witness_vkey])
    note = await store.latest_checkpoint()
    assert note is not None
    body = parse_note(note).body
    assert parse_checkpoint_body(body).size == 20
    await store.add_cosignatures(20, cosign(body, WITNESS, witness, 1_795_910_400))
    receipt = await prove(store, 3)
    assert verify_receipt(receipt, vkey, witnesses=[witness_vkey]).seq == 3
    second = cosigner_verifier_key(
        "tongban/cn-350800/witness", Ed25519PrivateKey.generate().public_key()
    )
    with pytest.raises(ReceiptInvalid, match="1 witness cosignatures, 2 needed"):
        verify_receipt(receipt, vkey, witnesses=[witness_vkey, second])
    assert verify_receipt(receipt, vkey, witnesses=[witness_vkey, second], min_cosignatures=1)
