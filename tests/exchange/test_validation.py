"""Every way a submission or a status event can be wrong, with its exact code and field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.errors import BodyTooLarge, InvalidJson, ValidationFailed
from gateway.exchange.validation import (
    MAX_SUBMISSION_BYTES,
    format_rfc3339,
    load_json_object,
    parse_status_event,
    parse_submission,
)
from tests.exchange.support import (
    APPLICANT_ID,
    BUSINESS,
    JIAN,
    QUZHOU,
    catalog,
    license_id,
    new_request_id,
    submission,
)

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
CATALOG = catalog()


def parse(body: dict[str, Any], *, handling: str | None = QUZHOU) -> Any:
    return parse_submission(
        body, catalog=CATALOG, accepting_node=JIAN, now=NOW, handling_node=handling
    )


def test_a_valid_submission_is_normalised() -> None:
    rid = new_request_id().upper()
    sub = parse(
        submission(
            rid, applicant={"name": " 李秀英 ", "id_type": "111", "id": APPLICANT_ID.lower()}
        )
    )
    assert sub.request_id == rid.lower()
    assert sub.submitted_at == "2026-06-01T01:00:00.000000Z"
    assert sub.applicant == {"name": "李秀英", "id_type": "111", "id": APPLICANT_ID.upper()}
    assert sub.accepting_node == JIAN
    assert sub.licenses == (license_id(),)


BAD: dict[str, tuple[dict[str, Any], str, str]] = {
    "request id not a UUID": ({"request_id": "abc"}, "request_id", "must be a UUID"),
    "request id a number": ({"request_id": 7}, "request_id", "must be a UUID"),
    "request id without dashes": (
        {"request_id": "0" * 36},
        "request_id",
        "must be a UUID",
    ),
    "unknown item": ({"item_code": "TB-000000-0000"}, "item_code", "no such item"),
    "item handled elsewhere": (
        {"item_code": "TB-360800-0101"},
        "item_code",
        "handled by cn-360800",
    ),
    "item missing": ({"item_code": None}, "item_code", "missing"),
    "applicant not an object": ({"applicant": "李秀英"}, "applicant", "must be an object"),
    "applicant name missing": (
        {"applicant": {"id_type": "111", "id": APPLICANT_ID}},
        "applicant.name",
        "missing",
    ),
    "applicant name too long": (
        {"applicant": {"name": "李" * 65, "id_type": "111", "id": APPLICANT_ID}},
        "applicant.name",
        "at most 64",
    ),
    "applicant id type unknown": (
        {"applicant": {"name": "李秀英", "id_type": "999", "id": APPLICANT_ID}},
        "applicant.id_type",
        "must be 111",
    ),
    "applicant id check character wrong": (
        {"applicant": {"name": "李秀英", "id_type": "111", "id": APPLICANT_ID[:17] + "0"}},
        "applicant.id",
        "check character",
    ),
    "applicant USCC wrong": (
        {"applicant": {"name": "某公司", "id_type": "001", "id": "91110000600037341A"}},
        "applicant.id",
        "check character",
    ),
    "applicant unknown field": (
        {"applicant": {"name": "李秀英", "id_type": "111", "id": APPLICANT_ID, "age": 41}},
        "applicant.age",
        "unknown field",
    ),
    "applicant phone malformed": (
        {"applicant": {"name": "李秀英", "id_type": "111", "id": APPLICANT_ID, "phone": "call me"}},
        "applicant.phone",
        "digits",
    ),
    "licenses not a list": ({"licenses": "x"}, "licenses", "must be a list"),
    "too many licenses": (
        {"licenses": [license_id(str(i)) for i in range(21)]},
        "licenses",
        "at most 20",
    ),
    "license check character wrong": (
        {"licenses": [license_id()[:-1] + ("A" if license_id()[-1] != "A" else "B")]},
        "licenses[0]",
        "check character",
    ),
    "license of a type the item may not read": (
        {"licenses": [license_id(type_code=BUSINESS)]},
        "licenses[0]",
        "用证清单",
    ),
    "license listed twice": ({"licenses": [license_id(), license_id()]}, "licenses[1]", "twice"),
    "form not an object": ({"form": ["a"]}, "form", "must be an object"),
    "form too big": ({"form": {"x": "y" * 70000}}, "form", "at most 65536 bytes"),
    "submitted_at without offset": (
        {"submitted_at": "2026-06-01T09:00:00"},
        "submitted_at",
        "RFC 3339",
    ),
    "submitted_at not a date": ({"submitted_at": "yesterday"}, "submitted_at", "RFC 3339"),
    "submitted_at in the future": (
        {"submitted_at": "2026-06-01T10:06:00+08:00"},
        "submitted_at",
        "in the future",
    ),
    "unknown top-level field": ({"priority": "high"}, "priority", "unknown field"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_submission_names_the_field(name: str) -> None:
    over, field, reason = BAD[name]
    with pytest.raises(ValidationFailed) as caught:
        parse(submission(**over))
    assert caught.value.code == "validation_failed"
    assert caught.value.status == 400
    assert field in caught.value.fields, caught.value.fields
    assert reason in caught.value.fields[field]


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse({"request_id": "x", "item_code": "nope", "applicant": {}, "submitted_at": "x"})
    assert set(caught.value.fields) >= {
        "request_id",
        "item_code",
        "applicant.name",
        "applicant.id_type",
        "applicant.id",
        "submitted_at",
    }


def test_reasons_and_detail_never_repeat_the_identity_number() -> None:
    wrong = APPLICANT_ID[:17] + ("0" if APPLICANT_ID[17] != "0" else "1")
    with pytest.raises(ValidationFailed) as caught:
        parse(submission(applicant={"name": "李秀英", "id_type": "111", "id": wrong}))
    text = caught.value.detail + str(caught.value.fields)
    assert wrong not in text
    assert "李秀英" not in text


def test_the_accepting_side_routes_by_item_instead() -> None:
    sub = parse(submission(item_code="TB-360800-0101", licenses=[]), handling=None)
    assert sub.item_code == "TB-360800-0101"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[1, 2]", InvalidJson),
        (b"{", InvalidJson),
        (b'{"a": 1, "a": 2}', InvalidJson),
        (b'{"a": NaN}', InvalidJson),
        (b"\xff\xfe", InvalidJson),
        (b"{" + b" " * MAX_SUBMISSION_BYTES + b"}", BodyTooLarge),
    ],
)
def test_bodies_that_are_not_one_json_object(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_json_object(body, limit=MAX_SUBMISSION_BYTES)


def test_a_status_event_is_normalised_to_utc() -> None:
    rid = new_request_id()
    event = parse_status_event(
        {
            "request_id": rid,
            "status": "accepted",
            "at": "2026-06-01T09:30:00+08:00",
            "note": " ok ",
        },
        request_id=rid,
        now=NOW,
    )
    assert (event.status, event.at, event.note) == ("accepted", "2026-06-01T01:30:00.000000Z", "ok")
    assert format_rfc3339(NOW) == "2026-06-01T02:00:00.000000Z"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"status": "done"}, "status"),
        ({"status": None}, "status"),
        ({"at": "soon"}, "at"),
        ({"at": "2026-06-02T09:30:00+08:00"}, "at"),
        ({"note": "x" * 501}, "note"),
        ({"note": 5}, "note"),
        ({"request_id": "00000000-0000-4000-8000-000000000000"}, "request_id"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_status_event(over: dict[str, Any], field: str) -> None:
    rid = new_request_id()
    body = {"status": "accepted", "at": "2026-06-01T09:30:00+08:00"} | over
    with pytest.raises(ValidationFailed) as caught:
        parse_status_event(body, request_id=rid, now=NOW)
    assert caught.value.code == "validation_failed"
    assert field in caught.value.fields
