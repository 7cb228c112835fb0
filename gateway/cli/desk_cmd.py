"""``tongban desk add-user``: desk accounts (窗口账号) in the node's users file.

The password is read with ``getpass`` on a terminal (asked twice), or from standard
input with ``--password-stdin`` for scripts; it never appears in arguments, where other
users of the machine could read it from the process list. The file is replaced
atomically under a lock, the change is an audit entry (``desk.user_add``), and changing
an existing account (``--replace``) ends its open desk sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from gateway.audit.events import AuditEvent
from gateway.cli.common import add_json_option, add_node_options, fail, node_config, print_json
from gateway.config import NodeConfig
from gateway.desk.accounts import (
    ROLES,
    USER_ID_RE,
    DeskUser,
    locked,
    read_accounts,
    with_user,
    write_accounts,
)
from gateway.desk.database import DeskDatabase
from gateway.desk.passwords import MAX_PASSWORD, check_password_rules, hash_password, parse_hash
from gateway.desk.setup import DB_NAME


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    desk = sub.add_parser("desk", help="hall desk accounts")
    desk_sub = desk.add_subparsers(dest="desk_command", required=True, metavar="COMMAND")
    add = desk_sub.add_parser(
        "add-user",
        help="add (or with --replace, change) a desk account",
        description="Example: tongban desk add-user --node cn-360800 --user staff02 --role staff",
    )
    add_node_options(add)
    add.add_argument("--user", required=True, help="account id: 1-64 of a-z 0-9 . _ -")
    add.add_argument("--role", required=True, choices=ROLES, help="staff, auditor or admin")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (first line) instead of asking",
    )
    add.add_argument(
        "--replace", action="store_true", help="change the password and role of an existing user"
    )
    add_json_option(add)
    add.set_defaults(func=run_add_user)


def read_password(args: argparse.Namespace) -> str:
    """The new password: stdin's first line, or asked twice on a terminal."""
    if args.password_stdin:
        line = sys.stdin.readline(MAX_PASSWORD + 2)
        password = line.removesuffix("\n").removesuffix("\r")
    elif sys.stdin.isatty():
        password = getpass.getpass("New desk password: ")
        if getpass.getpass("Repeat it: ") != password:
            fail("the two passwords differ")
    else:
        fail("no terminal to ask for the password: pipe it in with --password-stdin")
    try:
        check_password_rules(password)
    except ValueError as exc:
        fail(str(exc))
    return password


async def _record(cfg: NodeConfig, user: str, role: str, replaced: bool) -> int:
    """The audit entry of the change, and (on replace) the end of the user's sessions."""
    from gateway.audit.service import open_audit_store

    ended = 0
    if replaced:
        db = DeskDatabase(cfg.data_dir / DB_NAME)
        try:
            ended = await db.run(
                lambda c: c.execute("DELETE FROM sessions WHERE user = ?", (user,)).rowcount
            )
        finally:
            await db.close()
    async with open_audit_store(cfg) as log:
        await log.append(
            AuditEvent(
                event="desk.user_add",
                actor_type="system",
                actor_id=cfg.id,
                actor_sub="cli",
                meta={"user": user, "role": role, "replaced": replaced, "sessions_ended": ended},
            )
        )
    return ended


def run_add_user(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    if cfg.desk_users_file is None:
        fail(f'{cfg.source}: [node] has no desk_users file; add desk_users = "desk-users.toml"')
    path = cfg.desk_users_file
    user_id = args.user
    if not USER_ID_RE.fullmatch(user_id):
        fail("--user: 1-64 characters of a-z 0-9 . _ - starting with a letter or digit")
    password = read_password(args)
    stored = hash_password(password)
    with locked(path):
        accounts = read_accounts(path)
        existed = accounts.get(user_id) is not None
        if existed and not args.replace:
            fail(f"desk user {user_id} exists already (use --replace to change it)")
        if accounts.demo and not cfg.demo:
            fail(f"{path} holds demo accounts and {cfg.id} is not a demo node")
        user = DeskUser(
            id=user_id, role=args.role, password=parse_hash(stored), password_text=stored
        )
        write_accounts(path, with_user(accounts, user))
    ended = asyncio.run(_record(cfg, user_id, args.role, existed))
    result = {
        "user": user_id,
        "role": args.role,
        "file": str(path),
        "replaced": existed,
        "sessions_ended": ended,
    }
    if args.json:
        print_json(result)
    else:
        verb = "changed" if existed else "added"
        print(f"{verb} desk user {user_id} ({args.role}) in {path}")
    return 0
