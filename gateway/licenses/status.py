"""License status as the issuing node states it (SPEC 4.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

StatusValue = Literal["valid", "revoked", "suspended"]
STATUS_VALUES: frozenset[str] = frozenset({"valid", "revoked", "suspended"})


@dataclass(frozen=True)
class LicenseStatus:
    """The issuing node's authoritative word on one license.

    An identifier the issuer never issued is not a status: adapters raise ``NotFound``
    for it and the verifier reports ``not_issued``.
    """

    identifier: str
    status: StatusValue
    since: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "status": self.status,
            "since": self.since,
            "reason": self.reason,
        }


StatusOutcome = Literal["known", "not_issued", "unknown"]


@dataclass(frozen=True)
class StatusAnswer:
    """What a verifier learned when it asked for a license's status.

    ``known`` carries the issuer's ``status``; ``not_issued`` means the issuing node
    answered that it never issued the identifier; ``unknown`` means it could not be
    asked or did not answer (``detail`` says why) — which a verdict must never read as
    valid or as revoked.
    """

    outcome: StatusOutcome
    source: str
    status: LicenseStatus | None = None
    detail: str = ""
    cached: bool = False
