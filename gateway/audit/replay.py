"""Replay (回放): rebuild what happened from the audit entries alone (SPEC 0, 6).

Three questions auditors ask, answered from any stream of entry bytes (an export,
a database, a running store):

* ``license_uses``: every entry about one license or holder, by keyed pseudonym. The
  pseudonym needs the node's secret, so the node (``AuditStore.pseudonym``) computes it
  for an identifier; an export alone never reveals which license a pseudonym is;
* ``request_life``: every entry of one request, by ``meta.request_id``, in order;
* ``count_events``: how many entries per partner and event, and per outcome.

Only entries that pass a cheap byte-level filter are parsed, so scanning a long log
for one license or request stays fast. Replay trusts the entries it is given: run
``verify`` first when the source is not already verified.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.audit.entry import parse_entry
from gateway.audit.export import ENTRIES_FILE, connect_readonly, database_path
from gateway.audit.store import AuditStore, as_blob

__all__ = [
    "EventCounts",
    "Step",
    "count_events",
    "entries_from_database",
    "entries_from_export",
    "license_uses",
    "request_life",
    "store_license_uses",
]

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class Step:
    """One entry as a line of history: when, what, who, with what result."""

    seq: int
    ts: str
    event: str
    actor_type: str
    actor_id: str
    actor_sub: str | None
    outcome: str
    code: str | None
    request_id: str | None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_bytes(cls, data: bytes) -> Step:
        entry = parse_entry(data)
        request_id = entry.meta.get("request_id")
        return cls(
            seq=entry.seq,
            ts=entry.ts,
            event=entry.event,
            actor_type=entry.actor.type,
            actor_id=entry.actor.id,
            actor_sub=entry.actor.sub,
            outcome=entry.outcome,
            code=entry.code,
            request_id=request_id if isinstance(request_id, str) else None,
            meta=entry.meta,
        )


def entries_from_export(directory: str | Path) -> Iterator[bytes]:
    """The entry bytes of an export, in order."""
    with (Path(directory) / ENTRIES_FILE).open("rb", buffering=1 << 20) as f:
        for line in f:
            yield line[:-1] if line[-1:] == b"\n" else line


def entries_from_database(path: str | Path, start: int = 0) -> Iterator[bytes]:
    """The entry bytes of a node database from ``seq`` ``start`` on (read-only)."""
    conn = connect_readonly(database_path(path))
    try:
        for (data,) in conn.execute(
            "SELECT bytes FROM entries WHERE seq >= ? ORDER BY seq", (start,)
        ):
            yield as_blob(data)
    finally:
        conn.close()


def license_uses(entries: Iterable[bytes], pseudonym: str) -> list[Step]:
    """Every entry whose ``subject`` is ``pseudonym`` (the keyed pseudonym of a license)."""
    needle = f',"subject":"{pseudonym}"'.encode("ascii")
    out = []
    for data in entries:
        at = data.rfind(b',"subject":')  # the last one is the top-level key
        if at >= 0 and data.startswith(needle, at):
            out.append(Step.from_bytes(data))
    return out


async def store_license_uses(store: AuditStore, identifier: str) -> list[Step]:
    """Every use of a license (or holder) identifier in a running store, via its index."""
    rows = await store.entries_for_subject(store.pseudonym(identifier))
    return [Step.from_bytes(data) for _, data in rows]


def request_life(entries: Iterable[bytes], request_id: str) -> list[Step]:
    """Every entry of one request (``meta.request_id``), in log order."""
    needle = json.dumps(request_id, ensure_ascii=False).encode("utf-8")
    out = []
    for data in entries:
        if needle in data:
            step = Step.from_bytes(data)
            if step.request_id == request_id:
                out.append(step)
    return out


@dataclass(frozen=True)
class EventCounts:
    """Entry counts: per (partner, event), per event, per outcome, and in total.

    Only entries whose actor is a partner count under ``by_partner``.
    """

    total: int
    by_partner: Mapping[tuple[str, str], int]
    by_event: Mapping[str, int]
    by_outcome: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (partner counts nested by partner, then event)."""
        partners: dict[str, dict[str, int]] = {}
        for (partner, event), n in sorted(self.by_partner.items()):
            partners.setdefault(partner, {})[event] = n
        return {
            "total": self.total,
            "by_partner": partners,
            "by_event": dict(sorted(self.by_event.items())),
            "by_outcome": dict(sorted(self.by_outcome.items())),
        }


def count_events(entries: Iterable[bytes], *, progress: Progress | None = None) -> EventCounts:
    """Count entries by partner and event, by event and by outcome."""
    by_partner: Counter[tuple[str, str]] = Counter()
    by_event: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    total = 0
    loads = json.loads
    for data in entries:
        obj = loads(data)
        event, outcome, actor = obj["event"], obj["outcome"], obj["actor"]
        by_event[event] += 1
        by_outcome[outcome] += 1
        if actor["type"] == "partner":
            by_partner[(actor["id"], event)] += 1
        total += 1
        if progress is not None and total % 65536 == 0:
            progress(total, None)
    if progress is not None:
        progress(total, total)
    return EventCounts(total, dict(by_partner), dict(by_event), dict(by_outcome))
