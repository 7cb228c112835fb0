"""Issuing at the issuing node: what the node decides, what it refuses, serials, status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from gateway.config import demo_config_path, load_node_config
from gateway.errors import NotFound, ValidationFailed
from gateway.exchange.catalog import load_catalog
from gateway.licenses.identifiers import make_resident_id, parse_license_identifier
from gateway.licenses.issuing import (
    change_status,
    issuable_document,
    issue_license,
    mint_license_qr,
)
from gateway.licenses.license_jws import parse_license_jws
from gateway.licenses.policy import PurposePolicy
from gateway.licenses.qr import parse_qr
from gateway.licenses.samples import DISABILITY_CERTIFICATE, REAL_ESTATE_CERTIFICATE
from gateway.licenses.store import LicenseStore
from gateway.tokens.mint import SigningKey
from tests.licenses.factory import HOLDER_ID, QUZHOU_USCC, new_pki

CFG = load_node_config(demo_config_path("cn-330800"), require_keys=False)
CATALOG = load_catalog(CFG.catalog_path)
TODAY = dt.date(2026, 11, 23)


def draft(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "type_code": DISABILITY_CERTIFICATE[0],
        "holder": {"name": "王建国", "id": HOLDER_ID},
        "valid_until": "2036-11-22",
        "data": {"disability_category": "视力残疾", "disability_level": "一级"},
    }
    d.update(over)
    return {k: v for k, v in d.items() if v is not ...}


def test_the_node_fills_identifier_issuer_type_name_area_and_dates() -> None:
    doc = issuable_document(draft(), cfg=CFG, catalog=CATALOG, serial="2600007", today=TODAY)
    ident = parse_license_identifier(doc.identifier)
    assert (ident.type_code, ident.issuer_code, ident.serial, ident.version) == (
        DISABILITY_CERTIFICATE[0],
        QUZHOU_USCC,
        "2600007",
        "001",
    )
    assert doc.issuer.code == CFG.issuer_uscc and doc.issuer.name == CFG.issuer_name
    assert doc.type_name == DISABILITY_CERTIFICATE[1]
    assert doc.area_code == "330800"
    assert doc.issued_on == doc.valid_from == TODAY
    assert doc.holder.id_type == "111"  # inferred
    assert doc.number == "3308002600007"


def test_a_government_uscc_of_digits_only_is_inferred_as_a_uscc() -> None:
    holder = {"name": "衢州市某局", "id": QUZHOU_USCC}
    doc = issuable_document(
        draft(holder=holder, type_code=REAL_ESTATE_CERTIFICATE[0]),
        cfg=CFG,
        catalog=CATALOG,
        serial="2600001",
        today=TODAY,
    )
    assert doc.holder.id_type == "001"


BAD: dict[str, tuple[dict[str, Any], str]] = {
    "identifier given": (draft(identifier="1.2.156.3005.2.X"), "identifier"),
    "unknown type": (draft(type_code="999"), "type_code"),
    "no type": (draft(type_code=...), "type_code"),
    "another issuer": (draft(issuer={"name": "x", "code": "1136080001423588XW"}), "issuer"),
    "another type name": (draft(type_name="营业执照"), "type_name"),
    "another area": (draft(area_code="360800"), "area_code"),
    "no holder": (draft(holder=...), "holder"),
    "holder without name": (draft(holder={"id": HOLDER_ID}), "holder.name"),
    "holder id check character": (
        draft(holder={"name": "王", "id": HOLDER_ID[:-1] + "0"}),
        "holder.id",
    ),
    "holder id type unknown": (
        draft(holder={"name": "王", "id": HOLDER_ID, "id_type": "999"}),
        "holder.id_type",
    ),
    "a birth date in the future": (
        draft(holder={"name": "王", "id": make_resident_id("330802", dt.date(2026, 12, 1), "011")}),
        "holder.id",
    ),
    "issued tomorrow": (draft(issued_on="2026-11-24"), "issued_on"),
    "not a date": (draft(valid_from="2026/01/01"), "valid_from"),
    "ends before it starts": (
        draft(valid_from="2026-01-01", valid_until="2025-12-31"),
        "valid_until",
    ),
    "data not an object": (draft(data=["x"]), "data"),
    "number not text": (draft(number=12), "number"),
    "too large": (draft(data={"notes": "长" * 12000}), "document"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_draft_is_refused_naming_the_field(case: str) -> None:
    bad, field = BAD[case]
    with pytest.raises(ValidationFailed) as caught:
        issuable_document(bad, cfg=CFG, catalog=CATALOG, serial="2600001", today=TODAY)
    assert caught.value.code == "validation_failed"
    assert field in caught.value.fields, caught.value.fields
    assert HOLDER_ID not in caught.value.detail


def test_issuing_signs_records_and_allocates_serials(tmp_path: Path) -> None:
    store = LicenseStore(tmp_path / "licenses.db")
    issuer = new_pki().issuer()
    first, doc1 = issue_license(store, issuer, draft(), cfg=CFG, catalog=CATALOG, today=TODAY)
    second, _ = issue_license(store, issuer, draft(), cfg=CFG, catalog=CATALOG, today=TODAY)
    assert parse_license_identifier(first.identifier).serial == "2600001"
    assert parse_license_identifier(second.identifier).serial == "2600002"
    stored = store.get(first.identifier)
    assert stored is not None and stored.jws == first.jws and stored.status.status == "valid"
    assert parse_license_jws(first.jws).digest == first.digest
    assert doc1.identifier == first.identifier
    store.close()


def test_status_changes_need_a_reason_and_date_from_now(tmp_path: Path) -> None:
    store = LicenseStore(tmp_path / "licenses.db")
    signed, _ = issue_license(
        store, new_pki().issuer(), draft(), cfg=CFG, catalog=CATALOG, today=TODAY
    )
    with pytest.raises(ValidationFailed) as caught:
        change_status(store, signed.identifier, "revoked", reason="  ")
    assert "reason" in caught.value.fields
    now = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)
    _, after = change_status(store, signed.identifier, "suspended", reason="核查中", now=now)
    assert (after.status, after.since, after.reason) == (
        "suspended",
        "2026-11-23T08:30:00Z",
        "核查中",
    )
    store.close()


def test_a_qr_code_is_minted_only_for_own_licenses_and_disclosable_fields(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    store = LicenseStore(tmp_path / "licenses.db")
    signed, _ = issue_license(
        store, new_pki().issuer(), draft(), cfg=CFG, catalog=CATALOG, today=TODAY
    )
    key = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    policy = PurposePolicy(CATALOG)
    text = mint_license_qr(store.get(signed.identifier), key, node_id=CFG.id, policy=policy)
    token = parse_qr(text)
    assert (token.lid, token.ldh, token.sco, token.iss) == (
        signed.identifier,
        signed.digest,
        ("*",),
        CFG.id,
    )
    with pytest.raises(NotFound):
        mint_license_qr(None, key, node_id=CFG.id, policy=policy)
    with pytest.raises(ValidationFailed) as caught:
        mint_license_qr(
            store.get(signed.identifier),
            key,
            node_id=CFG.id,
            policy=policy,
            fields=["data.location"],
        )
    assert "fields" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        mint_license_qr(
            store.get(signed.identifier), key, node_id=CFG.id, policy=policy, lifetime=600
        )
    assert "lifetime" in caught.value.fields
    store.close()
