"""Scanner, paste and file input at the verify box, and usage-record references."""

from __future__ import annotations

import json

import pytest

from gateway.desk.inputs import MAX_INPUT_CHARS, classify_input
from gateway.desk.receipts import ReceiptRef, parse_receipt_ref, qr_data_uri
from gateway.errors import ValidationFailed

JWS = "eyJhbGciOiJFUzI1NiJ9.eyJhIjoxfQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("TB1:" + JWS + "\n", "qr", "TB1:" + JWS),
        ("  " + JWS + "\r\n", "license", JWS),
        ("\ufeff" + JWS, "license", JWS),
        (json.dumps({"identifier": "x", "license": JWS}), "license", JWS),
        (json.dumps({"qr": "TB1:" + JWS}), "qr", "TB1:" + JWS),
    ],
)
def test_recognised_inputs(text: str, kind: str, value: str) -> None:
    got = classify_input(text)
    assert (got.kind, got.value) == (kind, value)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "hello", "a.b", "{not json", json.dumps({"license": 5}), json.dumps([JWS])],
)
def test_unrecognised_inputs_fail_on_field_input(text: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        classify_input(text)
    assert exc.value.code == "validation_failed"
    assert "input" in exc.value.fields


def test_oversized_input_is_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        classify_input("TB1:" + "A" * MAX_INPUT_CHARS)
    assert exc.value.fields == {"input": "longer than 128 KiB"}


def test_receipt_reference_round_trip_and_qr() -> None:
    ref = ReceiptRef(node="cn-360800", seq=42, leaf=bytes(range(32)))
    text = ref.text()
    assert text.startswith("TBR1:cn-360800:42:")
    assert parse_receipt_ref(" " + text + "\n") == ref
    uri = qr_data_uri(text)
    assert uri.startswith("data:image/svg+xml")


@pytest.mark.parametrize(
    "text",
    [
        "TBR1:cn-360800:42",
        "TBR1:cn-36080:42:" + "A" * 43,
        "TBR1:cn-360800:-1:" + "A" * 43,
        "TBR1:cn-360800:042:" + "A" * 43,
        "TBR1:cn-360800:42:" + "A" * 42 + "B",  # not the canonical form of 32 bytes
        "TBR2:cn-360800:42:" + "A" * 43,
    ],
)
def test_bad_receipt_references(text: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_receipt_ref(text)
    assert exc.value.code == "validation_failed"
    assert "ref" in exc.value.fields
