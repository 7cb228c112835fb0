"""The demo licenses: valid identifiers, the catalog's fields, one of each status per city."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.config import DEMO_NODE_IDS, demo_config_path, load_node_config
from gateway.exchange.catalog import load_catalog
from gateway.licenses.document import read_document
from gateway.licenses.identifiers import (
    parse_license_identifier,
    validate_resident_id,
    validate_uscc,
)
from gateway.licenses.policy import PurposePolicy
from gateway.licenses.samples import (
    BUSINESS_LICENCE,
    DISABILITY_CERTIFICATE,
    FOOD_BUSINESS_LICENCE,
    REAL_ESTATE_CERTIFICATE,
    sample_documents,
    sample_licenses,
    sample_statuses,
)

TODAY = dt.date(2026, 11, 23)
COMMON = ("type_name", "number", "holder.name", "holder.id", "issuer.name", "valid_until")
DATA_FIELDS = {
    BUSINESS_LICENCE[0]: (
        "data.enterprise_name",
        "data.legal_representative",
        "data.registered_capital",
        "data.address",
        "data.business_scope",
    ),
    FOOD_BUSINESS_LICENCE[0]: ("data.enterprise_name", "data.business_items", "data.address"),
    DISABILITY_CERTIFICATE[0]: ("data.disability_category", "data.disability_level"),
    REAL_ESTATE_CERTIFICATE[0]: (
        "data.location",
        "data.unit_number",
        "data.area_m2",
        "data.right_type",
    ),
}


@pytest.mark.parametrize("node_id", DEMO_NODE_IDS)
def test_every_city_has_realistic_valid_licenses_of_four_types(node_id: str) -> None:
    cfg = load_node_config(demo_config_path(node_id), require_keys=False)
    catalog = load_catalog(cfg.catalog_path)
    policy = PurposePolicy(catalog)
    samples = sample_licenses(cfg)
    types = {s.document["type_code"] for s in samples}
    assert types == {
        t[0]
        for t in (
            BUSINESS_LICENCE,
            FOOD_BUSINESS_LICENCE,
            DISABILITY_CERTIFICATE,
            REAL_ESTATE_CERTIFICATE,
        )
    }
    for t in (
        BUSINESS_LICENCE,
        FOOD_BUSINESS_LICENCE,
        DISABILITY_CERTIFICATE,
        REAL_ESTATE_CERTIFICATE,
    ):
        assert catalog.license_types[t[0]].name == t[1]
    assert len({s.document["identifier"] for s in samples}) == len(samples)
    for sample in samples:
        doc = read_document(sample.document)
        ident = parse_license_identifier(doc.identifier)
        assert (ident.issuer_code, ident.serial) == (cfg.issuer_uscc, sample.serial)
        assert doc.issuer.code == cfg.issuer_uscc and doc.area_code == node_id[3:]
        if doc.holder.id_type == "111":
            assert validate_resident_id(doc.holder.id, today=TODAY)[:4] == node_id[3:7]
            assert len(doc.holder.name) in (2, 3)
        else:
            assert validate_uscc(doc.holder.id)[2:6] == node_id[3:7]
        for field in (*COMMON, *DATA_FIELDS[doc.type_code]):
            assert doc.field(field)[0], f"{doc.type_name} lacks {field}"
        # every field the catalog lets some item see exists, unless it belongs to another
        # type sharing that item (business_items is the food licence's, not the business
        # licence's)
        foreign = {f for t, fs in DATA_FIELDS.items() if t != doc.type_code for f in fs}
        for field in policy.disclosable_fields(doc.type_code):
            assert doc.field(field)[0] or field in foreign, f"{doc.type_name} lacks {field}"
        assert doc.issued_on <= TODAY


@pytest.mark.parametrize("node_id", DEMO_NODE_IDS)
def test_some_expired_one_revoked_one_suspended_per_city(node_id: str) -> None:
    cfg = load_node_config(demo_config_path(node_id), require_keys=False)
    statuses = sample_statuses(cfg)
    kinds = sorted(s.status for s in statuses.values())
    assert kinds.count("revoked") == 1 and kinds.count("suspended") == 1
    expired = [
        d
        for d in sample_documents(cfg)
        if d["valid_until"] and d["valid_until"] < TODAY.isoformat()
    ]
    assert len(expired) >= 2
    for status in statuses.values():
        assert status.since and status.since.endswith("Z")
        assert (status.reason is None) == (status.status == "valid")


def test_the_samples_are_the_same_every_time() -> None:
    cfg = load_node_config(demo_config_path("cn-330800"), require_keys=False)
    assert sample_documents(cfg) == sample_documents(cfg)
    other = load_node_config(demo_config_path("cn-360800"), require_keys=False)
    assert sample_documents(cfg)[0]["holder"] != sample_documents(other)[0]["holder"]


def test_the_license_named_in_the_docs_is_a_valid_quzhou_disability_certificate() -> None:
    named = "1.2.156.3005.2.111000000000179619001.113308000026472540.2161551.001.O"
    cfg = load_node_config(demo_config_path("cn-330800"), require_keys=False)
    [sample] = [s for s in sample_licenses(cfg) if s.document["identifier"] == named]
    assert sample.status.status == "valid"
    assert sample.document["type_code"] == DISABILITY_CERTIFICATE[0]
    assert sample.document["valid_until"] > "2031"
    assert named in (Path(__file__).resolve().parents[2] / "docs" / "licenses.md").read_text()
