"""Leases of a crashed process end at restart instead of holding deliveries back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from gateway.exchange.outbox import owner_is_dead


def test_owner_is_dead_only_for_gone_processes_of_this_host() -> None:
    host = socket.gethostname()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    assert owner_is_dead(f"cn-360800/{host}/{dead_pid}/abc123")
    assert not owner_is_dead(f"cn-360800/{host}/{os.getppid()}/abc123")  # alive
    assert not owner_is_dead(f"cn-360800/other-host/{dead_pid}/abc123")  # not ours to judge
    assert not owner_is_dead("not an owner")
    # An earlier process that had our very pid (containers restart as the same pid).
    assert owner_is_dead(f"cn-360800/{host}/{os.getpid()}/old000")
