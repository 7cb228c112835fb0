"""Audit entries (审计条目): the exact bytes that are hashed into the log (SPEC 6).

An entry is the RFC 8785 canonical JSON of one fixed-shape object. Because the shape
is fixed, its canonical key order is fixed too::

    actor{id,sub,type} code commit event meta node outcome prev request response seq
    subject ts v

so the writer does not need a general canonicaliser on its hot path: it encodes every
field except ``prev`` and ``seq`` when the event is handed in (``prepare_entry``), and
the single writer task only splices in the two values that depend on log order
(``PreparedEntry.assemble``). ``tests/audit/test_entry.py`` proves with hypothesis that
these bytes are identical to ``rfc8785.dumps`` of the same object; the general
``rfc8785`` library runs only for float values inside ``meta``, whose ECMAScript number
format it owns.

``parse_entry`` is strict: exact keys, exact types and forms, and the bytes must be the
canonical form of what they parse to, so one logical entry has exactly one byte string
and one leaf hash.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple, get_args

import rfc8785

from gateway.audit.events import ActorType, AuditEvent, Outcome
from gateway.encoding import b64u_decode, b64u_encode
from gateway.errors import GatewayError
from gateway.randpool import RandomPool

if TYPE_CHECKING:
    from _hashlib import HASH

__all__ = [
    "ENTRY_VERSION",
    "PAYLOAD_DOMAIN",
    "ZERO_PREV",
    "Actor",
    "Entry",
    "EntryEncoder",
    "EntryInvalid",
    "PreparedEntry",
    "Pseudonymiser",
    "canonical_meta",
    "commitment",
    "entry_bytes",
    "format_ts",
    "micros_of",
    "parse_entry",
    "prepare_entry",
    "pseudonymise",
    "subject_tag",
]

ENTRY_VERSION: Final = 1
PAYLOAD_DOMAIN: Final = b"tongban/payload/v1\n"
"""Domain prefix of a payload commitment: SHA-256(domain || salt || payload)."""
ZERO_PREV: Final = b64u_encode(bytes(32))
"""``prev`` of entry 0: base64url of 32 zero bytes."""
SALT_BYTES: Final = 32
_salt = RandomPool().take
"""Payload salts: 32 bytes each from a pooled ``os.urandom`` buffer (``gateway.randpool``)."""

ACTOR_TYPES: Final[frozenset[str]] = frozenset(get_args(ActorType))
OUTCOMES: Final[frozenset[str]] = frozenset(get_args(Outcome))
ENTRY_KEYS: Final = frozenset(
    {"v", "seq", "ts", "node", "prev", "event", "actor", "subject", "request", "response",
     "outcome", "code", "commit", "meta"}
)  # fmt: skip

_EVENT_RE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_NODE_RE = re.compile(r"cn-[0-9]{6}")
_TS_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_DIGEST_RE = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")
"""Canonical unpadded base64url of 32 bytes: the last character carries 2 zero bits."""
_MAX_EVENT = 64
_INT_MAX = 2**53 - 1

# The C string encoder of the json module escapes exactly what RFC 8785 escapes
# (quote, backslash, C0 controls with \b \t \n \f \r short forms and lowercase \u00xx
# otherwise) and leaves every other character, non-ASCII included, as it is.
_jstr = json.encoder.encode_basestring


class EntryInvalid(GatewayError):
    """Bytes are not a well-formed canonical audit entry, or an event cannot become one."""

    code = "entry_invalid"
    status = 500
    title = "Invalid audit entry"


# ---------------------------------------------------------------- small encoders


def format_ts(micros: int) -> str:
    """RFC 3339 UTC with exactly six fractional digits from epoch microseconds.

    ``2026-11-22T23:59:01.123456Z``. The whole-second prefix is cached: the writer
    stamps thousands of entries within one second, and ``strftime`` is the slow part.
    """
    global _ts_cache
    seconds, fraction = divmod(micros, 1_000_000)
    cached_seconds, prefix = _ts_cache
    if seconds != cached_seconds:
        if not 0 <= seconds < _MAX_TS_SECONDS:
            raise ValueError("audit timestamps must fall in the years 1970 to 9999")
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _ts_cache = (seconds, prefix)
    return f"{prefix}.{fraction:06d}Z"


_MAX_TS_SECONDS: Final = 253402300800  # 10000-01-01T00:00:00Z
_ts_cache: tuple[int, str] = (-1, "")


def micros_of(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime (for clocks and tests written in datetimes)."""
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class Pseudonymiser:
    """Keyed pseudonyms: b64u HMAC-SHA256(node secret, value) over a license id or holder id.

    The HMAC inner and outer hash states are computed once from the key and copied per
    value, which is the same function as ``hmac.digest`` at a third of its cost.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the pseudonym secret must have at least 32 bytes")
        key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, value: str) -> bytes:
        """The raw 32-byte HMAC of ``value`` (its first 8 bytes are the ``subject_tag``)."""
        inner = self._inner.copy()
        inner.update(value.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __call__(self, value: str) -> str:
        return _b64(self.digest(value))

    def states(self) -> tuple[HASH, HASH]:
        """The keyed inner and outer SHA-256 states, for callers that inline ``digest``."""
        return self._inner, self._outer


def pseudonymise(secret: bytes, value: str) -> str:
    """Keyed pseudonym of a license identifier or holder id: b64u HMAC-SHA256(secret, value)."""
    return b64u_encode(hmac.digest(secret, value.encode("utf-8"), "sha256"))


def commitment(salt: bytes, payload: bytes) -> str:
    """The ``commit`` field: b64u SHA-256(``tongban/payload/v1\\n`` || salt || payload)."""
    return _b64(hashlib.sha256(PAYLOAD_DOMAIN + salt + payload).digest())


_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")


def _b64(digest: bytes) -> str:
    """Unpadded base64url of a 32-byte digest (``b64u_encode`` without its generic steps)."""
    return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE)[:43].decode("ascii")


def _b64b(digest: bytes) -> bytes:
    """``_b64`` as ASCII bytes, for fragments that are bytes already."""
    return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE)[:43]


def subject_tag(pseudonym: str) -> int:
    """Subject-index key of a pseudonym: its first 8 HMAC bytes as a signed 64-bit integer.

    An integer key keeps the index small and its inserts cheap; lookups re-check the
    full pseudonym in the entry, so a collision costs a read, never a wrong answer.
    """
    raw = binascii.a2b_base64(pseudonym[:12].encode("ascii").translate(_FROM_URLSAFE))
    return int.from_bytes(raw[:8], "big", signed=True)


_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
_tag_of = struct.Struct(">q").unpack_from
"""``subject_tag`` from the raw HMAC: its first 8 bytes as a signed big-endian integer."""


_sha256 = hashlib.sha256


def _opt_str(value: str | None) -> str:
    return "null" if value is None else _jstr(value)


def _value(value: Any) -> str:
    """RFC 8785 text of one JSON value (general, for ``meta``)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _jstr(value)
    if isinstance(value, int):
        if not -_INT_MAX <= value <= _INT_MAX:
            raise ValueError(f"integer {value} is outside the exact range of a JSON number")
        return str(int(value))
    if isinstance(value, float):
        # ECMAScript number formatting is subtle; the reference library owns it.
        return str(rfc8785.dumps(value).decode("ascii"))
    if isinstance(value, dict):
        return _object(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value(v) for v in value) + "]"
    raise ValueError(f"{type(value).__name__} is not a JSON value")


def _object(obj: Mapping[Any, Any]) -> str:
    for key in obj:
        if not isinstance(key, str):
            raise ValueError("JSON object keys must be strings")
    # RFC 8785 3.2.3: keys ordered by their UTF-16 code units.
    keys = sorted(obj, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
    return "{" + ",".join(_jstr(k) + ":" + _value(obj[k]) for k in keys) + "}"


_MAX_DEPTH: Final = 32
_NON_BMP: Final = "\U00010000"
_SHAPES_LIMIT: Final = 4096
_shapes: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
"""Key tuple of a JSON object (in insertion order) -> its keys in canonical order, each
with the text that opens its member (``{"key":`` or ``,"key":``). Objects built by the
same code have the same keys every time (the verdict meta, the request meta), so the
key checks, the sort and the key escaping run once per shape, not once per entry."""


_flat_texts: dict[tuple[tuple[Any, Any], ...], str] = {}
"""Items of a nested object whose values are all strings or null -> its text, e.g. the
``checks`` of a verdict, which repeat from call to call. Only such objects are kept:
a string or null equals nothing but a string (the same text) or null, so a hit can
never stand for a different value (``True == 1``, ``1 == 1.0`` would)."""


def _shape(keys: tuple[Any, ...]) -> tuple[tuple[str, str], ...] | None:
    """The member openers of an object with ``keys``; None unless every key is plain.

    Plain keys are ``str`` within the Basic Multilingual Plane, where code point order
    (``sorted``) and UTF-16 order (RFC 8785 3.2.3) agree.
    """
    for key in keys:
        if type(key) is not str or (not key.isascii() and max(key) >= _NON_BMP):
            return None
    opener = "{"
    members = []
    for key in sorted(keys):
        members.append((key, opener + _jstr(key) + ":"))
        opener = ","
    shape = tuple(members)
    if len(_shapes) >= _SHAPES_LIMIT:
        _shapes.clear()
    _shapes[keys] = shape
    return shape


def _plain_object(obj: dict[Any, Any], depth: int) -> str | None:
    """RFC 8785 text of a plain JSON object, or None if it is not plain (see below).

    Plain: nested objects and arrays of strings, booleans, null and exact integers
    within +-(2**53 - 1), exact built-in types only, keys as in ``_shape``, at most
    ``_MAX_DEPTH`` levels. Floats (whose ECMAScript form the ``rfc8785`` library owns)
    and anything else give None, and the caller takes the general encoder, which also
    raises for what is not JSON. One pass both checks and encodes (this runs for every
    audit entry, on the event loop). A shape hit means the keys equal keys already
    checked: a ``str`` subclass with equal text encodes the same, and nothing the node
    builds holds a non-string that compares equal to a string.
    """
    keys = tuple(obj)
    shape = _shapes.get(keys)
    if shape is None:
        if not keys:
            return "{}"
        shape = _shape(keys)
        if shape is None:
            return None
    parts: list[str] = []
    add = parts.append
    for key, opener in shape:
        value = obj[key]
        kind = type(value)
        add(opener)
        if kind is str:
            add(_jstr(value))
        elif value is None:
            add("null")
        elif value is True:
            add("true")
        elif value is False:
            add("false")
        elif kind is int:
            if not -_INT_MAX <= value <= _INT_MAX:
                return None
            add(str(value))
        elif kind is dict:
            if not value:
                add("{}")
                continue
            try:
                items = tuple(value.items())
                text = _flat_texts.get(items)
            except TypeError:  # a nested object or array: not flat, not cached
                text = items = None
            if text is None:
                if depth >= _MAX_DEPTH:
                    return None
                text = _plain_object(value, depth + 1)
                if text is None:
                    return None
                if items is not None and all(v is None or type(v) is str for _, v in items):
                    if len(_flat_texts) >= _SHAPES_LIMIT:
                        _flat_texts.clear()
                    _flat_texts[items] = text
            add(text)
        elif kind is list:
            if not value:
                add("[]")
                continue
            text = _plain_array(value, depth + 1)
            if text is None:
                return None
            add(text)
        else:
            return None
    add("}")
    return "".join(parts)


def _plain_array(items: list[Any], depth: int) -> str | None:
    """RFC 8785 text of a plain JSON array (see ``_plain_object``), or None."""
    if depth > _MAX_DEPTH:
        return None
    texts: list[str] = []
    add = texts.append
    for value in items:
        kind = type(value)
        if kind is str:
            add(_jstr(value))
        elif value is None:
            add("null")
        elif value is True:
            add("true")
        elif value is False:
            add("false")
        elif kind is int:
            if not -_INT_MAX <= value <= _INT_MAX:
                return None
            add(str(value))
        elif kind is dict:
            text = _plain_object(value, depth + 1) if depth < _MAX_DEPTH else None
            if text is None:
                return None
            add(text)
        elif kind is list:
            text = _plain_array(value, depth + 1)
            if text is None:
                return None
            add(text)
        else:
            return None
    return "[" + ",".join(texts) + "]"


def canonical_meta(meta: Mapping[str, Any]) -> str:
    """RFC 8785 text of a ``meta`` object; raises ``ValueError`` if it is not plain JSON.

    Byte-identical to ``rfc8785.dumps`` (``tests/audit/test_entry.py`` checks it with
    hypothesis, cold and with the shape cache warm); plain objects take the one-pass
    encoder above, anything else the general one.
    """
    if not isinstance(meta, dict):
        raise ValueError("meta must be a JSON object (dict)")
    if type(meta) is dict:
        text = _plain_object(meta, 0)
        if text is not None:
            return text
    return _object(meta)


# ---------------------------------------------------------------- building


class PreparedEntry(NamedTuple):
    """An entry encoded up to its order-dependent fields ``prev`` and ``seq``.

    ``head`` ends with ``"prev":"``, ``mid`` runs from the closing quote of ``prev`` to
    ``"seq":``, ``tail`` from after ``seq`` to the closing brace. ``subject`` is the
    pseudonym and ``tag`` its subject-index key (``subject_tag``); ``salt``/``payload``
    are stored apart.

    A named tuple rather than a frozen dataclass: it is just as immutable, and one is
    made per audit entry on the event loop, where the frozen dataclass's
    ``object.__setattr__`` per field made it cost eight times as much to build.
    """

    head: bytes
    mid: bytes
    tail: bytes
    subject: str | None
    salt: bytes | None
    payload: bytes | None
    tag: int | None = None

    def assemble(self, seq: int, prev: bytes) -> bytes:
        """The entry bytes at position ``seq`` after the entry whose b64u leaf is ``prev``."""
        return b"".join((self.head, prev, self.mid, str(seq).encode("ascii"), self.tail))


_tuple_new = tuple.__new__
_COMMIT_STATE: Final = hashlib.sha256(PAYLOAD_DOMAIN)
"""SHA-256 state after the commitment's domain prefix, copied per payload."""


class EntryEncoder:
    """Turns events into ``PreparedEntry`` for one node, as cheaply as it safely can.

    Every append runs this on the event loop, so the parts that repeat (the actor and
    code fragment, the node and outcome fragment, known event names, the key order of
    ``meta`` objects) are validated and encoded once and then reused from small bounded
    caches, and the fragments are built as bytes so nothing is encoded twice. Every
    value that varies per event is still validated and escaped each time. Salts come
    from a pooled ``os.urandom`` buffer (``gateway.randpool``).
    """

    _CACHE_LIMIT: Final = 4096

    def __init__(self, node: str, pseudonym: Callable[[str], str]) -> None:
        if not isinstance(node, str) or not _NODE_RE.fullmatch(node):
            raise ValueError("node must be a node id like cn-360800")
        self._pseudonym = pseudonym
        # With a Pseudonymiser the HMAC runs inline (its key states) and the raw MAC
        # gives the subject tag without a base64 decode.
        self._hmac = pseudonym.states() if isinstance(pseudonym, Pseudonymiser) else None
        self._after_meta = {
            outcome: (',"node":"' + node + '","outcome":"' + outcome + '","prev":"').encode()
            for outcome in OUTCOMES
        }
        self._actors: dict[tuple[Any, ...], bytes] = {}
        self._events: dict[str, bytes] = {}

    def prepare(self, event: AuditEvent, ts: str) -> PreparedEntry:
        """Validate ``event`` and encode all but ``prev`` and ``seq``; ``ts`` from ``format_ts``.

        Raises ``EntryInvalid`` for an event that cannot be recorded (bad names, meta
        that is not plain JSON, text that is not valid Unicode), so only that caller fails.
        """
        try:
            return self._prepare(event, ts)
        except (ValueError, TypeError, UnicodeEncodeError, RecursionError) as exc:
            raise EntryInvalid(f"audit event {event.event!r} cannot be recorded: {exc}") from None

    def _actor(self, event: AuditEvent) -> bytes:
        key = (event.actor_type, event.actor_id, event.actor_sub, event.code)
        text = self._actors.get(key)
        if text is None:
            if event.actor_type not in ACTOR_TYPES:
                raise ValueError(f"actor_type must be one of {sorted(ACTOR_TYPES)}")
            if not isinstance(event.actor_id, str) or not event.actor_id:
                raise ValueError("actor_id must be a non-empty string")
            for label, value in (("actor_sub", event.actor_sub), ("code", event.code)):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{label} must be a string or None")
            fragment = (
                '{"actor":{"id":' + _jstr(event.actor_id)
                + ',"sub":' + _opt_str(event.actor_sub)
                + ',"type":"' + event.actor_type
                + '"},"code":' + _opt_str(event.code)
                + ',"commit":'
            )  # fmt: skip
            text = fragment.encode("utf-8")  # lone surrogates fail here, once
            if len(self._actors) >= self._CACHE_LIMIT:
                self._actors.clear()
            self._actors[key] = text
        return text

    def _event(self, name: str) -> bytes:
        if not isinstance(name, str) or len(name) > _MAX_EVENT or not _EVENT_RE.fullmatch(name):
            raise ValueError("event must be dotted lowercase words, e.g. license.verify")
        text = (',"event":"' + name + '","meta":').encode("ascii")
        if len(self._events) >= self._CACHE_LIMIT:
            self._events.clear()
        self._events[name] = text
        return text

    def _prepare(self, event: AuditEvent, ts: str) -> PreparedEntry:
        # Inlined on purpose (helpers and base64 steps): each call costs on the loop.
        # ``b2a_base64(d)`` ends with "=\n" for a 32-byte digest; [:43] drops both.
        event_text = self._events.get(event.event)
        if event_text is None:
            event_text = self._event(event.event)
        after_meta = self._after_meta.get(event.outcome)
        if after_meta is None:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}")
        meta = event.meta
        if type(meta) is dict:
            meta_text = _plain_object(meta, 0) if meta else "{}"
            if meta_text is None:
                meta_text = _object(meta)  # floats, or raises for what is not JSON
        else:
            meta_text = canonical_meta(meta)
        b64, urlsafe, sha = binascii.b2a_base64, _URLSAFE, _sha256
        payload = event.payload
        salt = None
        if payload is None:
            commit = b"null"
        else:
            salt = _salt(SALT_BYTES)
            state = _COMMIT_STATE.copy()
            state.update(salt)
            state.update(payload)
            commit = b'"%s"' % b64(state.digest()).translate(urlsafe)[:43]
        subject, tag = event.subject, None
        if subject is None:
            subject_text = b"null"
        else:
            if self._hmac is not None:
                inner_state, outer_state = self._hmac
                inner = inner_state.copy()
                inner.update(subject.encode("utf-8"))
                outer = outer_state.copy()
                outer.update(inner.digest())
                mac = outer.digest()
                encoded = b64(mac).translate(urlsafe)[:43]
                subject = encoded.decode("ascii")
                tag = _tag_of(mac)[0]
            else:
                subject = self._pseudonym(subject)
                encoded = subject.encode("ascii")
                tag = subject_tag(subject)
            subject_text = b'"%s"' % encoded
        request, response = event.request, event.response
        if request is not None and response is not None:
            mid = b'","request":"%s","response":"%s","seq":' % (
                b64(sha(request).digest()).translate(urlsafe)[:43],
                b64(sha(response).digest()).translate(urlsafe)[:43],
            )
        else:
            mid = b'","request":%s,"response":%s,"seq":' % (
                b"null" if request is None else b'"%s"' % _b64b(sha(request).digest()),
                b"null" if response is None else b'"%s"' % _b64b(sha(response).digest()),
            )
        head = b"".join(
            (self._actor(event), commit, event_text, meta_text.encode("utf-8"), after_meta)
        )
        tail = b',"subject":%s,"ts":"%s","v":1}' % (subject_text, ts.encode("ascii"))
        entry: PreparedEntry = _tuple_new(
            PreparedEntry, (head, mid, tail, subject, salt, payload, tag)
        )
        return entry


def prepare_entry(
    event: AuditEvent, *, node: str, ts: str, pseudonym: Callable[[str], str]
) -> PreparedEntry:
    """One-off ``EntryEncoder(node, pseudonym).prepare(event, ts)``, validating ``ts`` too."""
    if not isinstance(ts, str) or not _TS_RE.fullmatch(ts):
        raise EntryInvalid("ts must look like 2026-11-22T23:59:01.123456Z")
    try:
        encoder = EntryEncoder(node, pseudonym)
    except ValueError as exc:
        raise EntryInvalid(str(exc)) from None
    return encoder.prepare(event, ts)


# ---------------------------------------------------------------- the parsed form


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a partner node, a staff member, or the node itself."""

    type: str
    id: str
    sub: str | None


@dataclass(frozen=True, slots=True)
class Entry:
    """A parsed audit entry; ``to_bytes`` gives back exactly the bytes it came from."""

    seq: int
    ts: str
    node: str
    prev: str
    event: str
    actor: Actor
    subject: str | None
    request: str | None
    response: str | None
    outcome: str
    code: str | None
    commit: str | None
    meta: Mapping[str, Any]
    v: int = ENTRY_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of SPEC 6 (for display, and the reference canonicaliser)."""
        return {
            "v": self.v,
            "seq": self.seq,
            "ts": self.ts,
            "node": self.node,
            "prev": self.prev,
            "event": self.event,
            "actor": {"type": self.actor.type, "id": self.actor.id, "sub": self.actor.sub},
            "subject": self.subject,
            "request": self.request,
            "response": self.response,
            "outcome": self.outcome,
            "code": self.code,
            "commit": self.commit,
            "meta": dict(self.meta),
        }

    def to_bytes(self) -> bytes:
        """RFC 8785 canonical bytes of this entry."""
        return entry_bytes(self)


def entry_bytes(entry: Entry) -> bytes:
    """Canonical bytes of a parsed entry (the fast encoder, byte-identical to RFC 8785)."""
    text = (
        '{"actor":{"id":' + _jstr(entry.actor.id)
        + ',"sub":' + _opt_str(entry.actor.sub)
        + ',"type":' + _jstr(entry.actor.type)
        + '},"code":' + _opt_str(entry.code)
        + ',"commit":' + _opt_str(entry.commit)
        + ',"event":' + _jstr(entry.event)
        + ',"meta":' + canonical_meta(dict(entry.meta))
        + ',"node":' + _jstr(entry.node)
        + ',"outcome":' + _jstr(entry.outcome)
        + ',"prev":' + _jstr(entry.prev)
        + ',"request":' + _opt_str(entry.request)
        + ',"response":' + _opt_str(entry.response)
        + ',"seq":' + _value(entry.seq)
        + ',"subject":' + _opt_str(entry.subject)
        + ',"ts":' + _jstr(entry.ts)
        + ',"v":' + _value(entry.v)
        + "}"
    )  # fmt: skip
    return text.encode("utf-8")


# ---------------------------------------------------------------- parsing


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _number(text: str) -> int | float:
    # JSON numbers are doubles (RFC 8785): an integer beyond 2**53 can only be the
    # canonical form of a float, so read it as one and let the round trip decide.
    value = int(text)
    return value if -_INT_MAX <= value <= _INT_MAX else float(value)


_decoder = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_no_constants, parse_int=_number
)


def _digest(obj: Mapping[str, Any], key: str, *, nullable: bool) -> str | None:
    value = obj[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not _DIGEST_RE.fullmatch(value):
        raise ValueError(f"{key} must be the base64url form of a 32-byte digest")
    b64u_decode(value)
    return value


def _opt_text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj[key]
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string or null")
    return value


def parse_entry(data: bytes) -> Entry:
    """Parse entry bytes strictly; raises ``EntryInvalid`` saying what is wrong.

    Strict means: UTF-8, one JSON object with exactly the SPEC 6 keys and forms, and
    ``data`` is byte for byte the RFC 8785 form of that object.
    """
    try:
        entry = _parse(data)
        canonical = entry_bytes(entry)
    except (ValueError, TypeError, RecursionError) as exc:
        raise EntryInvalid(str(exc) or type(exc).__name__) from None
    if canonical != data:
        raise EntryInvalid("entry bytes are not in RFC 8785 canonical form")
    return entry


def _parse(data: bytes) -> Entry:
    text = bytes(data).decode("utf-8")
    obj = _decoder.decode(text)
    if not isinstance(obj, dict):
        raise ValueError("an entry must be a JSON object")
    keys = set(obj)
    if keys != ENTRY_KEYS:
        missing, extra = sorted(ENTRY_KEYS - keys), sorted(keys - ENTRY_KEYS)
        raise ValueError(f"wrong keys (missing {missing}, unexpected {extra})")
    if type(obj["v"]) is not int or obj["v"] != ENTRY_VERSION:
        raise ValueError(f"v must be {ENTRY_VERSION}")
    seq = obj["seq"]
    if type(seq) is not int or not 0 <= seq <= _INT_MAX:
        raise ValueError("seq must be a non-negative integer")
    ts = obj["ts"]
    if not isinstance(ts, str) or not _TS_RE.fullmatch(ts):
        raise ValueError("ts must be RFC 3339 UTC with microseconds")
    datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")  # a real date and time
    node = obj["node"]
    if not isinstance(node, str) or not _NODE_RE.fullmatch(node):
        raise ValueError("node must be a node id")
    prev = _digest(obj, "prev", nullable=False)
    assert prev is not None
    event = obj["event"]
    if not isinstance(event, str) or len(event) > _MAX_EVENT or not _EVENT_RE.fullmatch(event):
        raise ValueError("event must be dotted lowercase words")
    actor = obj["actor"]
    if not isinstance(actor, dict) or set(actor) != {"type", "id", "sub"}:
        raise ValueError("actor must have exactly type, id and sub")
    if actor["type"] not in ACTOR_TYPES:
        raise ValueError("actor.type must be partner, staff or system")
    if not isinstance(actor["id"], str) or not actor["id"]:
        raise ValueError("actor.id must be a non-empty string")
    if actor["sub"] is not None and not isinstance(actor["sub"], str):
        raise ValueError("actor.sub must be a string or null")
    outcome = obj["outcome"]
    if outcome not in OUTCOMES:
        raise ValueError("outcome must be ok, rejected or error")
    meta = obj["meta"]
    if not isinstance(meta, dict):
        raise ValueError("meta must be an object")
    return Entry(
        seq=seq,
        ts=ts,
        node=node,
        prev=prev,
        event=event,
        actor=Actor(type=actor["type"], id=actor["id"], sub=actor["sub"]),
        subject=_digest(obj, "subject", nullable=True),
        request=_digest(obj, "request", nullable=True),
        response=_digest(obj, "response", nullable=True),
        outcome=outcome,
        code=_opt_text(obj, "code"),
        commit=_digest(obj, "commit", nullable=True),
        meta=meta,
    )
