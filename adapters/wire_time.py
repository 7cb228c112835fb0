"""Times as the legacy partners write them, converted to and from RFC 3339 UTC.

Legacy government systems rarely speak RFC 3339: Longyan writes Beijing wall-clock time
as ``yyyyMMddHHmmss``, Zhuzhou as ``yyyy-MM-dd HH:mm:ss`` (also Beijing time, no zone),
and the national sharing API uses epoch milliseconds. Every conversion is strict and
raises ``MalformedMessage`` so a partner's odd date never becomes a crash.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from adapters.wire_errors import MalformedMessage

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

_COMPACT = re.compile(r"[0-9]{14}")
_DASHED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
#: Epoch milliseconds accepted: 2000-01-01 to 2100-01-01 (anything else is a unit mistake).
MIN_EPOCH_MS = 946_684_800_000
MAX_EPOCH_MS = 4_102_444_800_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the form every ``StatusEvent.at`` carries."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_rfc3339(text: object, *, field: str = "time") -> datetime:
    """An aware datetime from RFC 3339 text (``Z`` or an offset required)."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise MalformedMessage(f"{field} is not an RFC 3339 time with a zone", field=field)
    try:
        return datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedMessage(f"{field} is not a real date and time", field=field) from exc


def to_compact_beijing(moment: datetime) -> str:
    """``yyyyMMddHHmmss`` in Beijing time (Longyan)."""
    return moment.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def from_compact_beijing(text: object, *, field: str = "time") -> datetime:
    return _from_beijing(text, _COMPACT, "%Y%m%d%H%M%S", "yyyyMMddHHmmss", field)


def to_dashed_beijing(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time (Zhuzhou)."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def from_dashed_beijing(text: object, *, field: str = "time") -> datetime:
    return _from_beijing(text, _DASHED, "%Y-%m-%d %H:%M:%S", "yyyy-MM-dd HH:mm:ss", field)


def _from_beijing(
    text: object, pattern: re.Pattern[str], fmt: str, shown: str, field: str
) -> datetime:
    """A Beijing-time wall clock reading in one partner's layout, as an aware datetime."""
    if not isinstance(text, str) or not pattern.fullmatch(text):
        raise MalformedMessage(f"{field} is not {shown}", field=field)
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=BEIJING)
    except ValueError as exc:
        raise MalformedMessage(f"{field} is not a real date and time", field=field) from exc


def to_epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds (the national sharing API)."""
    return round(moment.timestamp() * 1000)


def from_epoch_ms(value: object, *, field: str = "time") -> datetime:
    """An aware UTC datetime from epoch milliseconds; seconds by mistake are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedMessage(f"{field} is not an integer of epoch milliseconds", field=field)
    if not MIN_EPOCH_MS <= value <= MAX_EPOCH_MS:
        raise MalformedMessage(f"{field} is not epoch milliseconds of this century", field=field)
    return datetime.fromtimestamp(value / 1000, UTC)
