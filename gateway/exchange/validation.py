"""Strict parsing of what partners and staff send: submissions and status events.

Everything that enters a request record passes through here, whether it came from a
partner city (``POST /v1/service-requests``), from hall staff (``tongban requests
submit``) or from an adapter translating a legacy system. Every problem is collected,
so one ``validation_failed`` names *all* failing fields at once; reasons never repeat
personal data (identity numbers are shown masked, names not at all).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from gateway.encoding import canonical_json
from gateway.errors import BodyTooLarge, InvalidJson, ValidationFailed
from gateway.exchange.catalog import Catalog
from gateway.exchange.model import REQUEST_STATUSES, RequestStatus, StatusEvent, Submission
from gateway.licenses.identifiers import (
    IdentifierError,
    parse_license_identifier,
    validate_resident_id,
    validate_uscc,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_SUBMISSION_BYTES",
    "format_rfc3339",
    "load_json_object",
    "parse_request_id",
    "parse_rfc3339",
    "parse_status_event",
    "parse_submission",
]

MAX_SUBMISSION_BYTES = 256 * 1024
"""A submission is a few identifiers and a form; anything bigger is not one."""
MAX_EVENT_BYTES = 8 * 1024
MAX_FORM_BYTES = 64 * 1024
MAX_LICENSES = 20
MAX_NOTE_CHARS = 500
MAX_NAME_CHARS = 64
FUTURE_LEEWAY = timedelta(minutes=5)
"""Clocks of partner cities drift; a submission from further in the future is refused."""

ID_TYPES = {"111": "resident identity number", "001": "unified social credit code"}
SUBMISSION_KEYS = frozenset(
    {"request_id", "item_code", "applicant", "licenses", "form", "submitted_at"}
)
APPLICANT_KEYS = frozenset({"name", "id_type", "id", "phone"})
EVENT_KEYS = frozenset({"request_id", "status", "at", "note"})
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------- JSON and times


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json_object(body: bytes, *, limit: int) -> dict[str, Any]:
    """Parse a JSON object of at most ``limit`` bytes; duplicate keys and NaN refused."""
    if len(body) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    try:
        value = json.loads(
            body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidJson("the body is not valid UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise InvalidJson("the body must be a JSON object")
    return value


def parse_rfc3339(text: object) -> datetime:
    """A timezone-aware datetime from RFC 3339 text; ``ValueError`` otherwise."""
    if not isinstance(text, str) or not 20 <= len(text) <= 40 or "T" not in text.upper():
        raise ValueError("not an RFC 3339 date-time")
    value = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("an RFC 3339 date-time needs a time zone offset")
    return parsed


def format_rfc3339(moment: datetime) -> str:
    """The one text form times are stored and compared in: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_request_id(value: object, field: str = "request_id") -> str:
    """A UUID in its canonical text form, lower-cased (the idempotency key)."""
    if not isinstance(value, str) or len(value) != 36:
        raise ValidationFailed(f"{field} is not a UUID", fields={field: "must be a UUID"})
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(f"{field} is not a UUID", fields={field: "must be a UUID"}) from None
    if str(parsed) != value.lower():
        raise ValidationFailed(f"{field} is not a UUID", fields={field: "must be a UUID"})
    return str(parsed)


# ---------------------------------------------------------------- submissions


class _Problems:
    """Collects field -> reason, then raises one ``validation_failed`` for all."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.fields: dict[str, str] = {}

    def add(self, field: str, reason: str) -> None:
        self.fields.setdefault(field, reason)

    def raise_if_any(self) -> None:
        if self.fields:
            names = ", ".join(sorted(self.fields))
            raise ValidationFailed(
                f"the {self.what} has invalid fields: {names}", fields=self.fields
            )


def _text(problems: _Problems, data: Mapping[str, Any], key: str, field: str) -> str | None:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.add(field, "missing or not a non-empty string")
        return None
    return value.strip()


def _applicant(problems: _Problems, raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.add("applicant", "must be an object with name, id_type and id")
        return {}
    for key in sorted(set(raw) - APPLICANT_KEYS):
        problems.add(f"applicant.{key}", "unknown field")
    out: dict[str, Any] = {}
    name = _text(problems, raw, "name", "applicant.name")
    if name is not None:
        if len(name) > MAX_NAME_CHARS or _CONTROL.search(name):
            problems.add("applicant.name", f"at most {MAX_NAME_CHARS} printable characters")
        else:
            out["name"] = name
    id_type = raw.get("id_type")
    if id_type not in ID_TYPES:
        problems.add("applicant.id_type", "must be 111 (resident identity number) or 001 (USCC)")
    else:
        out["id_type"] = id_type
    id_value = _text(problems, raw, "id", "applicant.id")
    if id_value is not None and id_type in ID_TYPES:
        try:
            if id_type == "111":
                out["id"] = validate_resident_id(id_value, field="applicant.id")
            else:
                out["id"] = validate_uscc(id_value, field="applicant.id")
        except IdentifierError as exc:
            problems.add("applicant.id", exc.reason)
    if "phone" in raw:
        phone = raw["phone"]
        if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
            problems.add("applicant.phone", "digits, spaces and dashes, 5 to 20 characters")
        else:
            out["phone"] = phone
    return out


def _licenses(problems: _Problems, raw: object, allowed_types: tuple[str, ...] | None) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_LICENSES:
        problems.add("licenses", f"must be a list of at most {MAX_LICENSES} license identifiers")
        return []
    out: list[str] = []
    for i, text in enumerate(raw):
        field = f"licenses[{i}]"
        try:
            parsed = parse_license_identifier(text, field=field)
        except IdentifierError as exc:
            problems.add(field, exc.reason)
            continue
        if allowed_types is not None and parsed.type_code not in allowed_types:
            problems.add(field, "this item may not use licenses of this type (用证清单)")
            continue
        if str(parsed) in out:
            problems.add(field, "listed twice")
            continue
        out.append(str(parsed))
    return out


def _form(problems: _Problems, raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add("form", "must be an object")
        return {}
    try:
        size = len(canonical_json(raw))
    except Exception:  # rfc8785 refuses values JSON cannot carry exactly
        problems.add("form", "holds values that are not portable JSON")
        return {}
    if size > MAX_FORM_BYTES:
        problems.add("form", f"must be at most {MAX_FORM_BYTES} bytes")
        return {}
    return cast(dict[str, Any], raw)


def parse_submission(
    data: Mapping[str, Any],
    *,
    catalog: Catalog,
    accepting_node: str,
    now: datetime,
    handling_node: str | None = None,
) -> Submission:
    """A validated ``Submission``, or ``validation_failed`` naming every bad field.

    ``handling_node`` is this node when a partner submits to us: the item must be one
    we handle. The accepting side passes ``None`` and routes by the item instead.
    """
    problems = _Problems("submission")
    for key in sorted(set(data) - SUBMISSION_KEYS):
        problems.add(key, "unknown field")
    request_id = ""
    try:
        request_id = parse_request_id(data.get("request_id"))
    except ValidationFailed as exc:
        problems.fields.update(exc.fields)
    item_code = _text(problems, data, "item_code", "item_code")
    item = catalog.item(item_code) if item_code else None
    if item_code and item is None:
        problems.add("item_code", "no such item in the catalog")
    elif item is not None and handling_node is not None and item.handling_node != handling_node:
        problems.add("item_code", f"handled by {item.handling_node}, not by {handling_node}")
    applicant = _applicant(problems, data.get("applicant"))
    licenses = _licenses(problems, data.get("licenses"), item.license_types if item else None)
    form = _form(problems, data.get("form"))
    submitted_at = ""
    try:
        moment = parse_rfc3339(data.get("submitted_at"))
    except ValueError:
        problems.add("submitted_at", "must be an RFC 3339 date-time with an offset")
    else:
        if moment > now + FUTURE_LEEWAY:
            problems.add("submitted_at", "is in the future")
        else:
            submitted_at = format_rfc3339(moment)
    problems.raise_if_any()
    return Submission(
        request_id=request_id,
        item_code=cast(str, item_code),
        applicant=applicant,
        licenses=tuple(licenses),
        form=form,
        submitted_at=submitted_at,
        accepting_node=accepting_node,
    )


# ---------------------------------------------------------------- status events


def parse_status_event(data: Mapping[str, Any], *, request_id: str, now: datetime) -> StatusEvent:
    """A validated ``StatusEvent`` for ``request_id`` (the id in the path)."""
    problems = _Problems("status event")
    for key in sorted(set(data) - EVENT_KEYS):
        problems.add(key, "unknown field")
    if "request_id" in data and data["request_id"] != request_id:
        problems.add("request_id", "does not match the request in the path")
    status = data.get("status")
    if status not in REQUEST_STATUSES:
        problems.add("status", f"must be one of {', '.join(REQUEST_STATUSES)}")
    at = ""
    try:
        moment = parse_rfc3339(data.get("at"))
    except ValueError:
        problems.add("at", "must be an RFC 3339 date-time with an offset")
    else:
        if moment > now + FUTURE_LEEWAY:
            problems.add("at", "is in the future")
        at = format_rfc3339(moment)
    note = data.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
        problems.add("note", f"must be text of at most {MAX_NOTE_CHARS} characters")
        note = ""
    problems.raise_if_any()
    return StatusEvent(
        request_id=request_id, status=cast(RequestStatus, status), at=at, note=note.strip()
    )


def normalise_event(event: StatusEvent, *, now: datetime) -> StatusEvent:
    """An adapter's event checked like an inbound one (status, time, note)."""
    return parse_status_event(
        {"status": event.status, "at": event.at, "note": event.note},
        request_id=parse_request_id(event.request_id),
        now=now,
    )
