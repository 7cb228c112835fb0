"""The one error a partner-format parser raises, whichever direction the bytes came from.

The same parser reads a partner's reply (on the adapter side), a partner's callback (on
the node side) and our own request (on the simulator side). ``MalformedMessage`` is a
``ValidationFailed`` so an inbound callback with a bad body answers ``validation_failed``
as it is; adapters turn it into ``UpstreamError`` with ``upstream_malformed`` because a
partner that answers garbage is an unavailable partner to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.errors import NotFound, UpstreamError, ValidationFailed
from gateway.licenses.errors import ConsentReason, ConsentRefused

C = TypeVar("C", str, int)


class MalformedMessage(ValidationFailed):
    """A partner message that cannot be read: wrong charset, bad XML/JSON/form, or a
    required field missing or of the wrong form. ``detail`` names what, never the value."""

    def __init__(self, detail: str, *, field: str = "body") -> None:
        super().__init__(detail, fields={field: detail})
        self.field = field


def upstream_malformed(partner_id: str, what: str, exc: MalformedMessage) -> UpstreamError:
    """The caller's view of a malformed reply: the partner is unusable for this call."""
    return UpstreamError(f"{partner_id} answered the {what} with a malformed reply: {exc.detail}")


@dataclass(frozen=True)
class ResultCodes(Generic[C]):
    """A partner's result vocabulary, as far as the node's errors are concerned."""

    ok: C
    not_found: frozenset[C]
    consent_used: C
    consent_invalid: C
    meaning: Mapping[C, str]


def raise_for_result(partner_id: str, what: str, code: C, codes: ResultCodes[C]) -> None:
    """Turn a partner's result code into the node's error, or return when it is OK.

    "No such license/request" is ``NotFound``; a refused QR token is the issuer's answer
    (``ConsentRefused``), not an outage; any other refusal is ``UpstreamError``.
    """
    if code == codes.ok:
        return
    meaning = codes.meaning.get(code, "unknown code")
    if code in codes.not_found:
        raise NotFound(f"{partner_id} says: {meaning}")
    if code in (codes.consent_used, codes.consent_invalid):
        reason: ConsentReason = "qr_replayed" if code == codes.consent_used else "qr_expired"
        raise ConsentRefused(reason, f"{partner_id} says: {meaning}")
    raise UpstreamError(
        f"{partner_id} refused the {what} (partner code {str(code)[:10]}: {meaning})"
    )
