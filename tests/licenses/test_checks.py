"""The offline license checks, one flawed license per reason code (SPEC 4.3, 4.5)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from gateway.encoding import canonical_json
from gateway.exchange.catalog import ServiceItem
from gateway.keys import Issuer
from gateway.licenses.checks import (
    HolderClaim,
    check_holder,
    check_purpose,
    check_status,
    examine_license,
)
from gateway.licenses.document import read_document
from gateway.licenses.identifiers import make_license_identifier
from gateway.licenses.license_jws import parse_license_jws
from gateway.licenses.status import LicenseStatus, StatusAnswer
from gateway.licenses.trust import TrustStore
from tests.licenses.factory import (
    HOLDER_ID,
    JIAN_USCC,
    OTHER_ID,
    Pki,
    document,
    new_pki,
    signed,
    swap_signature,
    tamper_payload,
    with_header,
)

TODAY = dt.date(2026, 11, 23)
NAMES = ["identifier", "signature", "chain", "certificate", "issuer", "validity"]


@pytest.fixture(scope="module")
def pki() -> Pki:
    return new_pki()


@pytest.fixture(scope="module")
def issuer(pki: Pki) -> Issuer:
    return pki.issuer()


def rows(jws: str, trust: TrustStore) -> dict[str, tuple[str, str | None]]:
    exam = examine_license(parse_license_jws(jws), trust, today=TODAY)
    assert [c.name for c in exam.checks] == NAMES
    return {c.name: (c.result, c.code) for c in exam.checks}


def test_a_good_license_passes_every_check(pki: Pki, issuer: Issuer) -> None:
    exam = examine_license(parse_license_jws(signed(issuer)), pki.trust(), today=TODAY)
    assert [(c.result, c.code) for c in exam.checks] == [("pass", None)] * 6
    assert exam.authentic
    assert exam.document is not None and exam.document.holder.id == HOLDER_ID


Make = Callable[[Pki, Issuer], str]

FLAWS: dict[str, tuple[Make, str, str]] = {
    "tampered payload byte": (
        lambda p, i: tamper_payload(signed(i)),
        "signature",
        "signature_invalid",
    ),
    "signature of another license": (
        lambda p, i: swap_signature(signed(i), signed(i, serial="2430600")),
        "signature",
        "signature_invalid",
    ),
    "alg HS256 in the header": (
        lambda p, i: with_header(i, canonical_json(document()), alg="HS256"),
        "signature",
        "signature_invalid",
    ),
    "typ of a request token": (
        lambda p, i: with_header(i, canonical_json(document()), typ="tongban-req+jwt"),
        "signature",
        "signature_invalid",
    ),
    "critical header extension": (
        lambda p, i: with_header(i, canonical_json(document()), crit=["exp"]),
        "signature",
        "signature_invalid",
    ),
    "no x5c": (
        lambda p, i: with_header(i, canonical_json(document()), x5c=None),
        "signature",
        "signature_invalid",
    ),
    "x5c in base64url": (
        lambda p, i: with_header(i, canonical_json(document()), x5c=["-_-_"]),
        "signature",
        "signature_invalid",
    ),
    "certificate from an untrusted root": (
        lambda p, i: signed(new_pki().issuer()),
        "chain",
        "chain_untrusted",
    ),
    "certificate without digitalSignature": (
        lambda p, i: signed(p.issuer(digital_signature=False)),
        "chain",
        "chain_untrusted",
    ),
    "certificate expired before issuance": (
        lambda p, i: signed(
            p.issuer(not_after=dt.datetime(2023, 12, 31, tzinfo=dt.UTC)), issued_on="2024-03-01"
        ),
        "certificate",
        "cert_expired",
    ),
    "certificate not yet valid at issuance": (
        lambda p, i: signed(
            p.issuer(not_before=dt.datetime(2024, 6, 1, tzinfo=dt.UTC)), issued_on="2024-03-01"
        ),
        "certificate",
        "cert_expired",
    ),
    "issuer USCC not the certificate's": (
        lambda p, i: signed(i, uscc=JIAN_USCC),
        "issuer",
        "issuer_mismatch",
    ),
    "not yet valid": (
        lambda p, i: signed(i, valid_from="2027-01-01"),
        "validity",
        "not_yet_valid",
    ),
    "issued in the future": (
        lambda p, i: signed(i, issued_on="2026-11-24", valid_from="2026-11-24"),
        "validity",
        "not_yet_valid",
    ),
    "expired": (lambda p, i: signed(i, valid_until="2026-11-22"), "validity", "expired"),
    "identifier check character wrong": (
        lambda p, i: signed(i, identifier=document()["identifier"][:-1] + "0"),
        "identifier",
        "identifier_invalid",
    ),
    "identifier of another issuer": (
        lambda p, i: signed(
            i, identifier=make_license_identifier(document()["type_code"], JIAN_USCC, "2430599")
        ),
        "identifier",
        "identifier_invalid",
    ),
    "holder id with a wrong check character": (
        lambda p, i: signed(
            i, holder={"name": "张秀英", "id_type": "111", "id": HOLDER_ID[:-1] + "0"}
        ),
        "identifier",
        "identifier_invalid",
    ),
    "payload not a license document": (
        lambda p, i: with_header(i, b'{"hello":"world"}'),
        "identifier",
        "identifier_invalid",
    ),
    "payload not JSON": (
        lambda p, i: with_header(i, b"\xff\xfe not json"),
        "identifier",
        "identifier_invalid",
    ),
}


@pytest.mark.parametrize("flaw", sorted(FLAWS))
def test_each_flaw_fails_its_check_with_its_code(flaw: str, pki: Pki, issuer: Issuer) -> None:
    make, check, code = FLAWS[flaw]
    got = rows(make(pki, issuer), pki.trust())
    assert got[check] == ("fail", code), got
    first_failure = next(name for name in NAMES if got[name][0] == "fail")
    assert first_failure == check or got[first_failure][0] == "fail"


def test_valid_until_today_is_still_valid_and_long_term_never_expires(
    pki: Pki, issuer: Issuer
) -> None:
    assert rows(signed(issuer, valid_until="2026-11-23"), pki.trust())["validity"][0] == "pass"
    assert rows(signed(issuer, valid_until=None), pki.trust())["validity"][0] == "pass"


def test_an_unreadable_document_leaves_dependent_checks_unknown(pki: Pki, issuer: Issuer) -> None:
    got = rows(with_header(issuer, b"[]"), pki.trust())
    assert got["signature"] == ("pass", None)  # the bytes are what the issuer signed
    assert got["certificate"] == ("unknown", None)
    assert got["validity"] == ("unknown", None)


def _answer(outcome: str, status: str | None = None) -> StatusAnswer:
    st = LicenseStatus("x", status, "2026-11-01T00:00:00Z", "test") if status else None  # type: ignore[arg-type]
    return StatusAnswer(outcome, "cn-330800", st, detail="cn-330800 did not answer")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (_answer("known", "valid"), ("pass", None)),
        (_answer("known", "revoked"), ("fail", "revoked")),
        (_answer("known", "suspended"), ("fail", "suspended")),
        (_answer("not_issued"), ("fail", "not_issued")),
        (_answer("unknown"), ("unknown", "status_unknown")),
        (None, ("unknown", None)),
    ],
)
def test_status_rows(answer: StatusAnswer | None, expected: tuple[str, str | None]) -> None:
    row = check_status(answer)
    assert (row.result, row.code) == expected


def test_holder_binding_never_repeats_either_id() -> None:
    doc = read_document(document())
    assert check_holder(doc, HolderClaim(HOLDER_ID)).result == "pass"
    assert check_holder(doc, HolderClaim(HOLDER_ID.lower(), "111")).result == "pass"
    for claim in (HolderClaim(OTHER_ID), HolderClaim(HOLDER_ID, "001")):
        row = check_holder(doc, claim)
        assert (row.result, row.code) == ("fail", "holder_mismatch")
        assert HOLDER_ID not in row.detail and OTHER_ID not in row.detail


def test_purpose_policy_row() -> None:
    doc = read_document(document())
    item = ServiceItem("TB-1", "x", "x", "cn-330800", (doc.type_code,), ("holder.name",), 5)
    other = ServiceItem("TB-2", "x", "x", "cn-330800", ("OTHER",), ("holder.name",), 5)
    assert check_purpose(doc, item).result == "pass"
    row = check_purpose(doc, other)
    assert (row.result, row.code) == ("fail", "purpose_not_allowed")
