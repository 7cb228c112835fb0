"""The demo desk accounts with a cheap scrypt cost, for tests that sign in many times.

Same names, passwords, roles and code path as ``config/demo/desk-users.toml``; only the
cost parameter in the hash differs (N = 2**10 instead of 2**16), which the hash string
carries, so the node checks them exactly as it checks the real file.
"""

from __future__ import annotations

from gateway.desk.accounts import Accounts, DeskUser, write_accounts
from gateway.desk.passwords import hash_password, parse_hash
from tests.support.network import Tree

DEMO = (("staff01", "staff", "demo-staff"), ("audit01", "auditor", "demo-audit"))


def cheap_demo_accounts(tree: Tree) -> None:
    users = {}
    for uid, role, password in DEMO:
        stored = hash_password(password, log2_n=10)
        users[uid] = DeskUser(uid, role, parse_hash(stored), stored)  # type: ignore[arg-type]
    write_accounts(tree.root / "config" / "demo" / "desk-users.toml", Accounts(users, demo=True))
