"""Replay: uses of one license, the life of one request, counts by partner and event."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.events import AuditEvent
from gateway.audit.export import export
from gateway.audit.replay import (
    count_events,
    entries_from_database,
    entries_from_export,
    license_uses,
    request_life,
    store_license_uses,
)
from gateway.audit.store import AuditStore

from .conftest import fill, fill_and_sign

LICENSE = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"


async def test_replay_from_store_export_and_database(
    store: AuditStore, log_key: Ed25519PrivateKey, data_dir: Path, tmp_path: Path
) -> None:
    await fill(store, 20)
    for status in ("received", "accepted", "completed"):
        await store.append(
            AuditEvent(
                event="service_request.status",
                actor_type="partner",
                actor_id="cn-430200",
                subject=LICENSE,
                meta={"request_id": "9b2f0a1e", "status": status},
            )
        )
    await fill_and_sign(store, log_key, 10)
    export(store, tmp_path / "export")

    uses = await store_license_uses(store, LICENSE)
    assert [u.seq for u in uses] == [20, 21, 22]
    pseudonym = store.pseudonym(LICENSE)
    for source in (entries_from_export(tmp_path / "export"), entries_from_database(data_dir)):
        assert [u.seq for u in license_uses(source, pseudonym)] == [20, 21, 22]

    life = request_life(entries_from_export(tmp_path / "export"), "9b2f0a1e")
    assert [(s.seq, s.meta["status"]) for s in life] == [
        (20, "received"),
        (21, "accepted"),
        (22, "completed"),
    ]
    assert all(s.actor_id == "cn-430200" and s.request_id == "9b2f0a1e" for s in life)
    assert request_life(entries_from_database(data_dir, start=21), "9b2f0a1e")[0].seq == 21

    seen: list[int] = []
    counts = count_events(
        entries_from_export(tmp_path / "export"), progress=lambda n, _t: seen.append(n)
    )
    assert counts.total == store.size == 33 and seen[-1] == 33
    assert counts.by_partner[("cn-430200", "service_request.status")] == 3
    assert sum(counts.by_event.values()) == 33
    assert set(counts.by_outcome) <= {"ok", "rejected", "error"}
    doc = counts.to_json()
    assert doc["by_partner"]["cn-430200"]["service_request.status"] == 3
