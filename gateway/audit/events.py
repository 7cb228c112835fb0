"""What the rest of the node hands the audit log, and what it gets back (SPEC 6).

Domain code never builds entries itself: it describes an event with raw values and the
log turns them into an entry — digests for bodies, keyed pseudonyms for subjects, a
salted commitment for personal payloads — so no concern can leak personal data into the
chain by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from gateway.encoding import b64u_encode

ActorType = Literal["partner", "staff", "system"]
Outcome = Literal["ok", "rejected", "error"]


_NO_META: Any = object()
"""Default of ``AuditEvent.meta``: a fresh empty dict per event."""


@dataclass(frozen=True, init=False)
class AuditEvent:
    """One thing that happened, with raw values the log will digest or pseudonymise.

    ``subject`` is the raw license identifier or holder id; the log stores only its keyed
    pseudonym. ``request``/``response`` are raw body bytes; only their SHA-256 is stored.
    ``payload`` is personal data kept apart with a salt so it can be erased later.
    ``meta`` must hold non-personal details only.
    """

    event: str
    actor_type: ActorType
    actor_id: str
    outcome: Outcome = "ok"
    code: str | None = None
    actor_sub: str | None = None
    subject: str | None = None
    request: bytes | None = None
    response: bytes | None = None
    payload: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        event: str,
        actor_type: ActorType,
        actor_id: str,
        outcome: Outcome = "ok",
        code: str | None = None,
        actor_sub: str | None = None,
        subject: str | None = None,
        request: bytes | None = None,
        response: bytes | None = None,
        payload: bytes | None = None,
        meta: dict[str, Any] = _NO_META,
    ) -> None:
        # Every audited call builds one of these on the event loop. A generated frozen
        # ``__init__`` sets each field with ``object.__setattr__`` (half the cost of
        # making the event); writing the instance dict directly does the same, and the
        # instance stays frozen. The signature is the generated one's (a test keeps the
        # two in step with the fields).
        fields = self.__dict__
        fields["event"] = event
        fields["actor_type"] = actor_type
        fields["actor_id"] = actor_id
        fields["outcome"] = outcome
        fields["code"] = code
        fields["actor_sub"] = actor_sub
        fields["subject"] = subject
        fields["request"] = request
        fields["response"] = response
        fields["payload"] = payload
        fields["meta"] = {} if meta is _NO_META else meta


@dataclass(frozen=True, init=False)
class AuditReceipt:
    """The entry that records an event: its position and leaf hash, once durable."""

    seq: int
    leaf: bytes

    def __init__(self, seq: int, leaf: bytes) -> None:
        # One receipt per append, made on the event loop: as in ``AuditEvent``.
        fields = self.__dict__
        fields["seq"] = seq
        fields["leaf"] = leaf

    def header(self) -> str:
        """The ``Tongban-Audit`` response header value (SPEC 3)."""
        return f"seq={self.seq}; leaf={b64u_encode(self.leaf)}"


class AuditLog(Protocol):
    """Append-only, durable audit log. ``append`` returns only once the entry is on disk."""

    async def append(self, event: AuditEvent) -> AuditReceipt: ...

    def pseudonym(self, value: str) -> str:
        """The keyed pseudonym the log uses for ``value`` (for lookups by identifier)."""
        ...
