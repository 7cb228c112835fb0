"""The one error a partner-format parser raises, whichever direction the bytes came from.

The same parser reads a partner's reply (on the adapter side), a partner's callback (on
the node side) and our own request (on the simulator side). ``MalformedMessage`` is a
``ValidationFailed`` so an inbound callback with a bad body answers ``validation_failed``
as it is; adapters turn it into ``UpstreamError`` with ``upstream_malformed`` because a
partner that answers garbage is an unavailable partner to the caller.
"""

from __future__ import annotations

from gateway.errors import UpstreamError, ValidationFailed


class MalformedMessage(ValidationFailed):
    """A partner message that cannot be read: wrong charset, bad XML/JSON/form, or a
    required field missing or of the wrong form. ``detail`` names what, never the value."""

    def __init__(self, detail: str, *, field: str = "body") -> None:
        super().__init__(detail, fields={field: detail})
        self.field = field


def upstream_malformed(partner_id: str, what: str, exc: MalformedMessage) -> UpstreamError:
    """The caller's view of a malformed reply: the partner is unusable for this call."""
    return UpstreamError(f"{partner_id} answered the {what} with a malformed reply: {exc.detail}")
