"""How a verdict is shown to staff: masked ids, the item's field order, reasons in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_node_config
from gateway.desk.verdict_view import desk_view, shown_fields
from gateway.exchange.catalog import load_catalog
from gateway.licenses.verdict import Check, Verdict
from gateway.privacy import mask_embedded_ids

ROOT = Path(__file__).resolve().parents[2]
LID = "1.2.156.3005.2.11100000MB0341032Y001.113308000026472540.2146628.001.U"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("11010519491231002X", "1101**********002X"),
        ("11010519491231002x", "1101**********002x"),
        ("33088119740120967424", "3308**********967424"),  # 残疾人证号 = id number + 2 digits
        ("91330802MANRD07W0F", "91330802MANRD07W0F"),  # a company's USCC is public
        ("110105194912310021", "110105194912310021"),  # wrong check digit: not an id number
        ("证号 11010519491231002X 附", "证号 1101**********002X 附"),
    ],
)
def test_identity_numbers_inside_values_are_masked(value: str, shown: str) -> None:
    assert mask_embedded_ids(value) == shown


def test_fields_follow_the_item_and_mask_the_holder_id() -> None:
    catalog = load_catalog(ROOT / "config" / "catalog.toml")
    item = catalog.item("TB-360800-0101")
    fields = shown_fields(
        {
            "data": {"address": "浙江省衢州市", "enterprise_name": "衢州宏远"},
            "holder": {"name": "衢州宏远科技有限公司", "id": "91330802MANRD07W0F"},
            "type_name": "营业执照",
            "identifier": LID,
        },
        item,
    )
    assert [f["name"] for f in fields] == [
        "type_name", "holder.name", "holder.id", "data.enterprise_name", "data.address",
        "identifier",
    ]  # fmt: skip
    assert fields[2]["value"] == "9133**********7W0F"


def test_view_of_a_stopped_qr_still_names_the_issuing_city() -> None:
    cfg = load_node_config(ROOT / "config" / "demo" / "cn-360800.toml", require_keys=False)
    catalog = load_catalog(cfg.catalog_path)
    verdict = Verdict.from_checks(
        (Check("qr_validity", "fail", "qr_expired", "the QR code expired"),
         Check("status", "unknown", None, "not checked")),
        checked_at="2026-11-22T10:00:00Z",
        license={},
        identifier=LID,
        source="qr",
    )  # fmt: skip
    view = desk_view(cfg, verdict, catalog.item("TB-360800-0101"))
    assert view["verdict"] == "invalid"
    assert view["issuer"]["city"] == "衢州 Quzhou"
    assert view["status_checked_at"] is None
    (reason,) = view["reasons"]
    assert reason["code"] == "qr_expired"
    assert reason["text"]["zh"] and reason["text"]["en"] and reason["next"]["zh"]
    assert view["purpose"]["name"]["zh"].startswith("企业变更登记")
