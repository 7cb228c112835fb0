"""The verdict of a license verification (SPEC 4.5) and how check rows decide it.

Each check produces one row: ``pass``, ``fail`` (with the reason code) or ``unknown``
(the check could not be decided, e.g. the issuing city did not answer). The verdict is
tri-state on purpose: any failure makes the license **invalid**; otherwise anything
unknown makes it **undetermined**; only when every row passes is it **valid**. An
unreachable issuer therefore never turns into "valid" and never into "revoked".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.licenses.reasons import explain

__all__ = ["Check", "CheckResult", "Verdict", "VerdictValue", "decide", "not_checked"]

CheckResult = Literal["pass", "fail", "unknown"]
VerdictValue = Literal["valid", "invalid", "undetermined"]


@dataclass(frozen=True)
class Check:
    """One row of the verdict: what was checked, how it came out, and why."""

    name: str
    result: CheckResult
    code: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "result": self.result, "code": self.code, "detail": self.detail}


def not_checked(name: str, why: str) -> Check:
    """A row for a check that could not run because an earlier one already failed."""
    return Check(name, "unknown", None, f"not checked: {why}")


def decide(checks: tuple[Check, ...]) -> tuple[VerdictValue, tuple[str, ...]]:
    """The verdict and its reason codes (in check order, each once) from the rows."""
    reasons: list[str] = []
    for row in checks:
        if row.code is not None and row.result != "pass" and row.code not in reasons:
            reasons.append(row.code)
    if any(row.result == "fail" for row in checks):
        return "invalid", tuple(reasons)
    if any(row.result == "unknown" for row in checks):
        return "undetermined", tuple(reasons)
    return "valid", ()


@dataclass(frozen=True)
class Verdict:
    """The answer to one verification, ready to render or to serialise."""

    verdict: VerdictValue
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    license: dict[str, Any]
    checked_at: str
    identifier: str | None = None
    source: Literal["license", "qr"] = "license"
    purpose: str | None = None
    type_code: str | None = None
    issuer_code: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_checks(cls, checks: tuple[Check, ...], *, checked_at: str, **details: Any) -> Verdict:
        value, reasons = decide(checks)
        return cls(verdict=value, reasons=reasons, checks=checks, checked_at=checked_at, **details)

    def check(self, name: str) -> Check | None:
        for row in self.checks:
            if row.name == name:
                return row
        return None

    def to_json(self) -> dict[str, Any]:
        """The SPEC 4.5 object, plus ``identifier``, ``source`` and ``explanations``."""
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "checks": [row.to_json() for row in self.checks],
            "license": self.license,
            "checked_at": self.checked_at,
            "identifier": self.identifier,
            "source": self.source,
            "purpose": self.purpose,
            "explanations": explain(self.reasons),
        }

    def audit_meta(self) -> dict[str, Any]:
        """Non-personal facts for the audit entry: the outcome, never the fields shown."""
        meta: dict[str, Any] = {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "source": self.source,
            "purpose": self.purpose,
            "type_code": self.type_code,
            "issuer": self.issuer_code,
            "checks": {row.name: row.result for row in self.checks},
        }
        meta.update(self.meta)
        return meta
