"""The license document (SPEC 4.2): the signed JSON object, read into a typed value.

``read_document`` checks the *shape* only — which members exist and their JSON types,
dates in ``YYYY-MM-DD`` form — so that every check after it can rely on the fields.
Whether the identifiers inside are valid is a verification check of its own
(``identifier``), and whether an issuing node may sign a document is decided by
``gateway.licenses.issuing``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.errors import ValidationFailed
from gateway.licenses.identifiers import IdentifierError, validate_resident_id, validate_uscc
from gateway.licenses.strict_json import load_object

__all__ = [
    "ID_TYPES",
    "ID_TYPE_RESIDENT",
    "ID_TYPE_USCC",
    "DocumentError",
    "Holder",
    "IssuerRef",
    "LicenseDocument",
    "parse_date",
    "read_document",
    "read_document_bytes",
    "validate_holder_id",
]

ID_TYPE_RESIDENT = "111"
"""``holder.id_type`` of a resident identity number (居民身份证)."""
ID_TYPE_USCC = "001"
"""``holder.id_type`` of a unified social credit code (organisations)."""
ID_TYPES: frozenset[str] = frozenset({ID_TYPE_RESIDENT, ID_TYPE_USCC})

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAX_TEXT = 2000


class DocumentError(ValidationFailed):
    """The JSON is not a license document; ``field`` names the member that is wrong.

    The reason never repeats the member's value, which may be personal data.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"license document: {field}: {reason}", fields={field: reason})
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Holder:
    name: str
    id_type: str
    id: str


@dataclass(frozen=True)
class IssuerRef:
    name: str
    code: str


@dataclass(frozen=True)
class LicenseDocument:
    """A license document whose members have the types SPEC 4.2 names.

    ``raw`` is the whole object as signed (extra members included); treat it as
    read-only — it is what disclosure reads field values from.
    """

    identifier: str
    type_code: str
    type_name: str
    number: str
    holder: Holder
    issuer: IssuerRef
    area_code: str
    issued_on: date
    valid_from: date
    valid_until: date | None
    data: Mapping[str, Any]
    raw: Mapping[str, Any]

    def field(self, path: str) -> tuple[bool, Any]:
        """``(present, value)`` of a dotted catalog field name such as ``data.address``."""
        node: Any = self.raw
        for part in path.split("."):
            # ``dict``, not ``Mapping``: parsed JSON is dicts, and an ABC check costs more
            # than the lookup on this path (every disclosed field of every verification)
            if not isinstance(node, dict) or part not in node:
                return False, None
            node = node[part]
        return True, node


def parse_date(value: object, field: str) -> date:
    """A ``YYYY-MM-DD`` calendar date, or ``DocumentError`` naming ``field``."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise DocumentError(field, "must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DocumentError(field, "is not a real calendar date") from None


def _text(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DocumentError(path, "is required and must be non-empty text")
    if len(value) > _MAX_TEXT:
        raise DocumentError(path, f"is longer than {_MAX_TEXT} characters")
    return value


def _object(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise DocumentError(path, "is required and must be a JSON object")
    return value


def read_document(value: object) -> LicenseDocument:
    """Read a parsed JSON value as a license document, or raise ``DocumentError``."""
    if not isinstance(value, dict):
        raise DocumentError("document", "must be a JSON object")
    holder = _object(value, "holder", "holder")
    issuer = _object(value, "issuer", "issuer")
    id_type = _text(holder, "id_type", "holder.id_type")
    if id_type not in ID_TYPES:
        raise DocumentError("holder.id_type", "must be 111 (resident ID) or 001 (USCC)")
    until = value.get("valid_until", ...)
    if until is ...:
        raise DocumentError("valid_until", "is required (null for a long-term license)")
    area = _text(value, "area_code", "area_code")
    if not re.fullmatch(r"[0-9]{6}", area):
        raise DocumentError("area_code", "must be a 6-digit GB/T 2260 division code")
    data = _object(value, "data", "data")
    return LicenseDocument(
        identifier=_text(value, "identifier", "identifier"),
        type_code=_text(value, "type_code", "type_code"),
        type_name=_text(value, "type_name", "type_name"),
        number=_text(value, "number", "number"),
        holder=Holder(
            name=_text(holder, "name", "holder.name"),
            id_type=id_type,
            id=_text(holder, "id", "holder.id"),
        ),
        issuer=IssuerRef(
            name=_text(issuer, "name", "issuer.name"), code=_text(issuer, "code", "issuer.code")
        ),
        area_code=area,
        issued_on=parse_date(value.get("issued_on"), "issued_on"),
        valid_from=parse_date(value.get("valid_from"), "valid_from"),
        valid_until=None if until is None else parse_date(until, "valid_until"),
        data=data,
        raw=value,
    )


@functools.lru_cache(maxsize=1024)
def read_document_bytes(payload: bytes) -> LicenseDocument:
    """Parse strict JSON bytes (a JWS payload) as a license document.

    Cached (bounded) by the bytes: a license verified again is not parsed again. The
    result is shared, so treat ``raw`` and ``data`` as read-only.
    """
    try:
        value = load_object(payload)
    except ValueError as exc:
        raise DocumentError("document", str(exc)) from None
    return read_document(value)


def validate_holder_id(
    value: object, id_type: object, *, field: str, today: date | None = None
) -> tuple[str, str]:
    """``(id_type, normalised id)`` of a holder id, inferring the type when not given.

    A unified social credit code may be all digits (government bodies' codes often
    are), so the type is inferred by trying a resident identity number first and a
    USCC second, not by the look of the characters. ``ValidationFailed`` names
    ``field`` (or ``<field>_type``) and never repeats the value.
    """
    if id_type is not None and id_type not in ID_TYPES:
        reason = "must be 111 (resident ID) or 001 (USCC)"
        raise ValidationFailed(f"{field} type {reason}", fields={f"{field}_type": reason})
    if not isinstance(value, str) or not value.strip():
        reason = "must be a resident identity number or a unified social credit code"
        raise ValidationFailed(f"{field}: {reason}", fields={field: reason})
    kinds = (id_type,) if isinstance(id_type, str) else (ID_TYPE_RESIDENT, ID_TYPE_USCC)
    problems: list[IdentifierError] = []
    for kind in kinds:
        try:
            if kind == ID_TYPE_RESIDENT:
                return kind, validate_resident_id(value, field=field, today=today)
            return kind, validate_uscc(value, field=field)
        except IdentifierError as exc:
            problems.append(exc)
    # Both failed: name the first one the value missed only by its check character —
    # "check character is 3, expected 7" helps more than "neither". A resident id comes
    # first because reaching its check character needs a real birth date, while almost
    # any 18 characters reach a USCC's.
    near = [p for p in problems if p.part in ("check character", "organisation code check digit")]
    if len(problems) == 1 or near:
        reason = (near or problems)[0].reason
    else:
        reason = (
            "is neither a valid resident identity number nor a valid unified social credit code"
        )
    raise ValidationFailed(f"{field}: {reason}", fields={field: reason})
