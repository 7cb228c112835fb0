"""Errors of the license concern that partners see on the wire.

``ConsentRefused`` is the issuing node's refusal of a QR token presented as consent to
``POST /v1/licenses/fetch``: 403 ``forbidden`` with a ``reason`` member naming the
verdict reason (``qr_expired``, ``qr_replayed``, ``signature_invalid``), so a verifier
can tell staff exactly why and never mistakes a refusal for an unreachable issuer.
"""

from __future__ import annotations

from typing import Literal

from gateway.errors import Forbidden

__all__ = ["CONSENT_REASONS", "ConsentReason", "ConsentRefused"]

ConsentReason = Literal["qr_expired", "qr_replayed", "signature_invalid"]
CONSENT_REASONS: frozenset[str] = frozenset({"qr_expired", "qr_replayed", "signature_invalid"})


class ConsentRefused(Forbidden):
    """The QR token is not (or no longer) valid consent; ``reason`` says why."""

    def __init__(self, reason: ConsentReason, detail: str) -> None:
        super().__init__(detail, extra={"reason": reason})
        self.reason: ConsentReason = reason
