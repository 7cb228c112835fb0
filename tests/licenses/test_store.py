"""The issuing node's license register: real SQLite files, status rules, serials."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import Conflict, NotFound, ServiceUnavailable
from gateway.licenses.document import read_document
from gateway.licenses.license_jws import sign_license
from gateway.licenses.store import AsyncLicenseStore, LicenseStore
from tests.licenses.factory import document, new_pki

ISSUER = new_pki().issuer()
SINCE = "2026-01-01T00:00:00Z"


def add(store: LicenseStore, serial: str = "2430599") -> str:
    doc = document(serial=serial)
    store.add(sign_license(ISSUER, doc), read_document(doc), serial=serial, since=SINCE)
    return str(doc["identifier"])


def test_a_license_is_kept_with_its_digest_and_survives_reopening(tmp_path: Path) -> None:
    store = LicenseStore(tmp_path / "licenses.db")
    identifier = add(store)
    with pytest.raises(Conflict):
        add(store)
    store.close()
    again = LicenseStore(tmp_path / "licenses.db")
    stored = again.get(identifier)
    assert stored is not None
    assert stored.status.status == "valid" and stored.status.since == SINCE
    assert stored.document().identifier == identifier
    assert again.get(identifier.replace("2430599", "2430598")) is None
    again.close()


# (from, to, allowed)
RULES = [
    ("valid", "revoked", True),
    ("valid", "suspended", True),
    ("valid", "valid", False),
    ("suspended", "valid", True),
    ("suspended", "revoked", True),
    ("suspended", "suspended", False),
    ("revoked", "valid", False),
    ("revoked", "suspended", False),
    ("revoked", "revoked", False),
]


@pytest.mark.parametrize(("start", "to", "allowed"), RULES)
def test_status_changes_follow_the_issuer_rules(
    tmp_path: Path, start: str, to: str, allowed: bool
) -> None:
    store = LicenseStore(tmp_path / "licenses.db")
    identifier = add(store)
    if start != "valid":
        store.set_status(identifier, start, reason="setup", since=SINCE)  # type: ignore[arg-type]
    if allowed:
        before, after = store.set_status(
            identifier, to, reason="因故", since="2026-02-02T00:00:00Z"
        )  # type: ignore[arg-type]
        assert (before.status, after.status) == (start, to)
        assert store.status(identifier) == after
        assert (after.since, after.reason) == ("2026-02-02T00:00:00Z", "因故")
    else:
        with pytest.raises(Conflict) as caught:
            store.set_status(identifier, to, reason="x", since=SINCE)  # type: ignore[arg-type]
        assert caught.value.code == "conflict"
        assert store.status(identifier).status == start
    store.close()


def test_unknown_licenses_are_not_found(tmp_path: Path) -> None:
    store = LicenseStore(tmp_path / "licenses.db")
    with pytest.raises(NotFound):
        store.status(document()["identifier"])
    with pytest.raises(NotFound):
        store.set_status(document()["identifier"], "revoked", reason="x", since=SINCE)
    store.close()


def test_serials_continue_the_year(tmp_path: Path) -> None:
    store = LicenseStore(tmp_path / "licenses.db")
    assert store.next_serial(2026) == "2600001"
    add(store, serial="2612345")
    add(store, serial="2499999")
    assert store.next_serial(2026) == "2612346"
    assert store.next_serial(2025) == "2500001"
    add(store, serial="2599999")
    with pytest.raises(Conflict, match="no serials left"):
        store.next_serial(2025)
    store.close()


def test_listing_is_in_identifier_order_and_bounded(tmp_path: Path) -> None:
    store = LicenseStore(tmp_path / "licenses.db")
    ids = sorted(add(store, serial=f"24{n:05d}") for n in range(5))
    assert [s.identifier for s in store.list()] == ids
    assert len(store.list(limit=2)) == 2
    store.close()


async def test_the_async_store_runs_off_the_event_loop(tmp_path: Path) -> None:
    store = AsyncLicenseStore(tmp_path / "licenses.db")
    doc = document()
    await store.add(sign_license(ISSUER, doc), read_document(doc), serial="2430599", since=SINCE)
    assert (await store.status(doc["identifier"])).status == "valid"
    await store.set_status(doc["identifier"], "suspended", reason="核查", since=SINCE)
    assert (await store.get(doc["identifier"])).status.status == "suspended"  # type: ignore[union-attr]
    await store.ping()
    await store.close()
    await store.close()
    with pytest.raises(ServiceUnavailable):
        await store.status(doc["identifier"])


_OTHER_PROCESS = """
import sys
from pathlib import Path
from gateway.licenses.store import LicenseStore
store = LicenseStore(Path(sys.argv[1]))
store.set_status(sys.argv[2], "revoked", reason="吊销", since="2026-02-01T00:00:00Z")
store.close()
"""


async def test_a_revocation_by_another_process_is_seen_by_the_next_status_read(
    tmp_path: Path,
) -> None:
    # The node answers statuses from memory; an operator's `tongban license revoke`
    # runs in another process and must still take effect at once, not after a TTL.
    import asyncio
    import sys

    path = tmp_path / "licenses.db"
    store = AsyncLicenseStore(path)
    doc = document()
    await store.add(sign_license(ISSUER, doc), read_document(doc), serial="2430599", since=SINCE)
    for _ in range(3):  # read more than once, so the answer comes from the cache
        assert (await store.status(doc["identifier"])).status == "valid"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _OTHER_PROCESS, str(path), doc["identifier"]
    )
    assert await proc.wait() == 0
    revoked = await store.status(doc["identifier"])
    assert (revoked.status, revoked.reason) == ("revoked", "吊销")
    await store.close()


async def test_a_license_issued_after_a_not_found_answer_is_found(tmp_path: Path) -> None:
    path = tmp_path / "licenses.db"
    store = AsyncLicenseStore(path)
    await store.ping()
    doc = document(serial="2430600")
    for _ in range(2):
        with pytest.raises(NotFound):
            await store.status(doc["identifier"])
    other = LicenseStore(path)  # another connection, as the CLI's `license issue` uses
    other.add(sign_license(ISSUER, doc), read_document(doc), serial="2430600", since=SINCE)
    other.close()
    assert (await store.status(doc["identifier"])).status == "valid"
    await store.set_status(doc["identifier"], "suspended", reason="核查", since=SINCE)
    assert (await store.status(doc["identifier"])).status == "suspended"
    await store.close()
