"""Purpose policy (用证清单, SPEC 4.6) from the demo catalog, and disclosure."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ValidationFailed
from gateway.exchange.catalog import load_catalog
from gateway.licenses.document import read_document
from gateway.licenses.policy import PurposePolicy, consents_to
from gateway.licenses.samples import DISABILITY_CERTIFICATE, REAL_ESTATE_CERTIFICATE
from tests.licenses.factory import HOLDER_ID, document

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "config" / "catalog.toml")
POLICY = PurposePolicy(CATALOG)


@pytest.mark.parametrize(
    ("consent", "field", "expected"),
    [
        (["*"], "data.disability_level", True),
        (["data"], "data.disability_level", True),
        (["holder"], "holder.id", True),
        (["holder.name"], "holder.id", False),
        (["hold"], "holder.id", False),  # a group ends at a dot
        (["data.disability"], "data.disability_level", False),
        ([], "type_name", False),
    ],
)
def test_consent_by_field_group_or_everything(
    consent: list[str], field: str, expected: bool
) -> None:
    assert consents_to(consent, field) is expected


def test_a_purpose_sees_only_its_fields_and_only_what_was_consented() -> None:
    doc = read_document(document())
    renewal = POLICY.item("TB-360800-0302")  # 残疾人证换领
    shown = POLICY.disclose(doc, renewal, ["*"])
    assert list(shown) == ["identifier", *renewal.disclosed_fields]
    retirement = POLICY.item("TB-330800-0701")  # sees type_name, holder and the level only
    assert POLICY.disclose(doc, retirement, ["*"]) == {
        "identifier": doc.identifier,
        "type_name": "中华人民共和国残疾人证",
        "holder.name": "张秀英",
        "holder.id": HOLDER_ID,
        "data.disability_level": "二级",
    }
    assert POLICY.disclose(doc, retirement, ["data"]) == {
        "identifier": doc.identifier,
        "data.disability_level": "二级",
    }


def test_a_purpose_that_may_not_read_the_type_sees_nothing_but_the_identifier() -> None:
    doc = read_document(document())
    mortgage = POLICY.item("TB-330800-0501")  # real-estate only
    assert not POLICY.allows(mortgage, doc.type_code)
    assert POLICY.disclose(doc, mortgage, ["*"]) == {"identifier": doc.identifier}


def test_without_a_purpose_the_union_of_the_catalog_applies() -> None:
    fields = POLICY.disclosable_fields(DISABILITY_CERTIFICATE[0])
    assert "data.disability_category" in fields and "data.address" not in fields
    assert len(fields) == len(set(fields))
    assert "data.unit_number" in POLICY.disclosable_fields(REAL_ESTATE_CERTIFICATE[0])


def test_unknown_purposes_and_consent_to_nothing_disclosable_are_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        POLICY.item("TB-000000-0000")
    assert caught.value.fields == {"purpose": "not a service item of the catalog"}
    with pytest.raises(ValidationFailed) as caught:
        POLICY.check_consent(DISABILITY_CERTIFICATE[0], ["data.address"], field="fields")
    assert "data.address" in caught.value.fields["fields"]
    POLICY.check_consent(
        DISABILITY_CERTIFICATE[0], ["holder", "data.disability_level", "*"], field="f"
    )
