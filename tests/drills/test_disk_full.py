"""Drill: the disk fills up while the node appends to its audit log.

The node's ``data_dir`` lives on a small tmpfs made for the test (we are root here;
``mount -t tmpfs -o size=...``). A filler file takes every free byte while partner
calls keep coming. The node must refuse new work with 503 ``storage_unavailable`` —
never answer a call whose audit entry is not on disk — and lose nothing: after space
is freed it takes work again, and after a restart every acknowledged entry (the
``Tongban-Audit`` receipts of 2xx answers) is in the log and the chain verifies.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit.verify import verify_database
from tests.drills.drill_support import JIAN, Load, caller, edit_config, receipts_in_log, until
from tests.support.network import Network, Tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

SIZE = "8m"


@contextlib.contextmanager
def small_filesystem(path: Path) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(path)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the drill (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def fill(path: Path) -> Path:
    """Write zeros until the filesystem is full; returns the filler file."""
    filler = path / "filler"
    with filler.open("wb") as f:
        chunk = b"\0" * 65536
        for _ in range(100_000):  # bounded: 6.5 GB would be far past any tmpfs here
            try:
                f.write(chunk)
                f.flush()
            except OSError:
                break
        with contextlib.suppress(OSError):
            os.fsync(f.fileno())
    for size in (4096, 512, 1):  # the last partial blocks too
        with contextlib.suppress(OSError), filler.open("ab") as f:
            for _ in range(10_000):
                f.write(b"\0" * size)
                f.flush()
    return filler


async def test_a_full_disk_refuses_new_work_and_loses_nothing(
    tree: Tree, network: Network, tmp_path: Path
) -> None:
    with small_filesystem(tmp_path / "small") as small:
        data_dir = small / "var"
        edit_config(tree, JIAN, 'data_dir = "../../var/cn-360800"', f'data_dir = "{data_dir}"')
        cfg = await network.start(JIAN)
        client = caller(tree)
        load = Load(client, workers=4)
        load.start()
        try:
            await until(lambda: _answered(load, 20), 20)
            filler = fill(small)

            async def refusing() -> bool:
                tail = load.calls[-20:]
                return len(tail) == 20 and all(c.code == "storage_unavailable" for c in tail)

            await until(refusing, 30)
            statuses = {(c.status, c.code) for c in load.calls}
            assert statuses <= {
                (200, None),
                (503, "storage_unavailable"),
                (503, "replay_cache_unavailable"),
            }, statuses
            assert (503, "storage_unavailable") in statuses
            # a refusal is never acknowledged as done
            assert all(c.audit is None for c in load.calls if c.status == 503)

            filler.unlink()  # space again: the node takes work without a restart
            freed_at = len(load.calls)
            await until(lambda: _ok_since(load, freed_at, 10), 30)
        finally:
            await load.stop()
            await client.close()
        await network.stop(JIAN)
        acknowledged = [c.audit for c in load.calls if c.status == 200 and c.audit]
        assert len(acknowledged) >= 30

        await network.start(JIAN)  # restart on the same data: the store checks its head
        await network.stop(JIAN)
        db = cfg.data_dir / "audit" / "audit.sqlite3"
        assert receipts_in_log(db, acknowledged) == (0, 0)
        vkey = (cfg.node_certs / "log.vkey").read_text(encoding="utf-8").strip()
        report = verify_database(db, vkey)
        assert report.ok and report.first_bad is None, report
        assert report.entries >= len(acknowledged)


async def _answered(load: Load, count: int) -> bool:
    return sum(1 for c in load.calls if c.status == 200) >= count


async def _ok_since(load: Load, index: int, count: int) -> bool:
    return sum(1 for c in load.calls[index:] if c.status == 200) >= count
