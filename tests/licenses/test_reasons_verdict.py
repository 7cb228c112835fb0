"""Reason texts (SPEC 4.5) and the tri-state verdict."""

from __future__ import annotations

import pytest

from gateway.licenses.reasons import REASON_CODES, REASONS, explain
from gateway.licenses.verdict import Check, Verdict, decide

SPEC_CODES = [
    "identifier_invalid",
    "signature_invalid",
    "chain_untrusted",
    "cert_expired",
    "issuer_mismatch",
    "not_yet_valid",
    "expired",
    "revoked",
    "suspended",
    "status_unknown",
    "holder_mismatch",
    "purpose_not_allowed",
    "qr_expired",
    "qr_replayed",
    "digest_mismatch",
    "not_issued",
]


def test_every_spec_reason_has_chinese_english_and_a_next_step() -> None:
    assert list(REASON_CODES) == SPEC_CODES
    for code in SPEC_CODES:
        reason = REASONS[code]
        assert all(len(text) > 4 for text in (reason.zh, reason.en, reason.next_zh, reason.next_en))
        assert any("\u4e00" <= ch <= "\u9fff" for ch in reason.zh + reason.next_zh), code
        for english in (reason.en, reason.next_en):  # English, with a Chinese term at most
            assert sum(ch.isascii() for ch in english) > 0.8 * len(english), code


def test_explanations_follow_the_reasons_order() -> None:
    assert [e["code"] for e in explain(("revoked", "expired"))] == ["revoked", "expired"]


P, F, U = "pass", "fail", "unknown"


@pytest.mark.parametrize(
    ("rows", "verdict", "reasons"),
    [
        ([(P, None), (P, None)], "valid", ()),
        ([(P, None), (U, "status_unknown")], "undetermined", ("status_unknown",)),
        ([(F, "expired"), (U, "status_unknown")], "invalid", ("expired", "status_unknown")),
        ([(F, "signature_invalid"), (U, None), (F, "signature_invalid")], "invalid",
         ("signature_invalid",)),
        ([(U, None), (F, "revoked")], "invalid", ("revoked",)),
    ],
)  # fmt: skip
def test_any_fail_is_invalid_else_any_unknown_is_undetermined(
    rows: list[tuple[str, str | None]], verdict: str, reasons: tuple[str, ...]
) -> None:
    checks = tuple(Check(f"c{i}", r, c, "-") for i, (r, c) in enumerate(rows))  # type: ignore[arg-type]
    assert decide(checks) == (verdict, reasons)


def test_verdict_json_has_the_spec_members_and_staff_texts() -> None:
    checks = (Check("status", "fail", "revoked", "revoked since ..."),)
    out = Verdict.from_checks(checks, checked_at="2026-01-01T00:00:00Z", license={}).to_json()
    assert {"verdict", "reasons", "checks", "license", "checked_at"} <= set(out)
    assert out["verdict"] == "invalid"
    assert out["checks"] == [
        {"name": "status", "result": "fail", "code": "revoked", "detail": "revoked since ..."}
    ]
    assert out["explanations"][0]["zh"] == REASONS["revoked"].zh
