"""Desk accounts (窗口账号): a small TOML file of users, roles and scrypt hashes.

The file is read again whenever it changes on disk (by modification time and size), so
``tongban desk add-user`` takes effect on a running node without a restart. It is
written only by ``write_accounts``: to a temporary file in the same folder, fsynced,
then renamed over the old one, under an exclusive lock so two concurrent ``add-user``
runs cannot lose each other's account.

A file marked ``demo = true`` holds the published demo passwords; a node that is not a
demo node refuses to load it, so the demo accounts can never open a real desk.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

from gateway.desk.passwords import DUMMY_HASH, ScryptHash, parse_hash
from gateway.errors import ConfigError

Role = Literal["staff", "auditor", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
USER_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_FILE_BYTES = 1 << 20

HEADER = """\
# Hall desk accounts (窗口账号) of one Tongban node; see docs/desk.md.
# Written by `tongban desk add-user`; each password is an scrypt hash with its own salt
# and parameters ($scrypt$ln=..,r=..,p=..$salt$key).
"""
DEMO_HEADER = """\
# DEMO ONLY: the passwords of these accounts are published in the README. A node that
# is not a demo node (`demo = true` in its [node] table) refuses to load this file.
"""


@dataclass(frozen=True)
class DeskUser:
    """One desk account: staff sign verifications, auditors inspect the chain, admins both."""

    id: str
    role: Role
    password: ScryptHash
    password_text: str


@dataclass(frozen=True)
class Accounts:
    users: Mapping[str, DeskUser]
    demo: bool

    def get(self, user_id: str) -> DeskUser | None:
        return self.users.get(user_id)

    def stand_in(self) -> ScryptHash:
        """What a sign-in for a name that does not exist is checked against.

        It costs what the costliest real account costs, so the answer's timing does not
        tell whether an account exists.
        """
        if not self.users:
            return DUMMY_HASH
        costliest = max(self.users.values(), key=lambda u: (u.password.log2_n, u.password.r))
        return replace(
            DUMMY_HASH,
            log2_n=costliest.password.log2_n,
            r=costliest.password.r,
            p=costliest.password.p,
        )


def _fail(path: Path, key: str, reason: str) -> ConfigError:
    return ConfigError(str(path), key, reason)


def parse_accounts(path: Path, text: str) -> Accounts:
    """Parse and validate a users file; raises ``ConfigError`` naming the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(path, "-", f"not valid TOML ({exc})") from exc
    unknown = set(raw) - {"demo", "users"}
    if unknown:
        raise _fail(path, sorted(unknown)[0], "unknown key")
    demo = raw.get("demo", False)
    if not isinstance(demo, bool):
        raise _fail(path, "demo", "expected true or false")
    table = raw.get("users", {})
    if not isinstance(table, dict):
        raise _fail(path, "users", "expected a table of accounts")
    users: dict[str, DeskUser] = {}
    for user_id, entry in table.items():
        key = f"users.{user_id}"
        if not USER_ID_RE.fullmatch(user_id):
            raise _fail(path, key, "user ids are 1-64 of a-z 0-9 . _ - (lowercase)")
        if not isinstance(entry, dict):
            raise _fail(path, key, "expected a table with role and password")
        if set(entry) - {"role", "password"}:
            raise _fail(path, f"{key}.{sorted(set(entry) - {'role', 'password'})[0]}", "unknown")
        role = entry.get("role")
        if role not in ROLES:
            raise _fail(path, f"{key}.role", f"expected one of {', '.join(ROLES)}")
        password = entry.get("password")
        if not isinstance(password, str):
            raise _fail(path, f"{key}.password", "missing")
        try:
            parsed = parse_hash(password)
        except ValueError as exc:
            raise _fail(path, f"{key}.password", str(exc)) from exc
        users[user_id] = DeskUser(id=user_id, role=role, password=parsed, password_text=password)
    return Accounts(users=users, demo=demo)


def read_accounts(path: Path) -> Accounts:
    """Read a users file; a missing file is an empty set of accounts."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return Accounts(users={}, demo=False)
    except OSError as exc:
        raise _fail(path, "-", f"cannot read ({exc.strerror})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise _fail(path, "-", "larger than 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, "-", "not UTF-8 text") from exc
    return parse_accounts(path, text)


def render_accounts(accounts: Accounts) -> str:
    """The file text for ``accounts`` (ids, roles and hashes are plain ASCII by rule)."""
    lines = [HEADER.rstrip("\n")]
    if accounts.demo:
        lines += [DEMO_HEADER.rstrip("\n"), "demo = true"]
    for user in sorted(accounts.users.values(), key=lambda u: u.id):
        lines += ["", f"[users.{user.id}]", f'role = "{user.role}"']
        lines.append(f'password = "{user.password_text}"')
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the file, held while it is read, changed and replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_accounts(path: Path, accounts: Accounts) -> None:
    """Replace the file atomically (temporary file, fsync, rename, fsync the folder)."""
    text = render_accounts(accounts)
    parse_accounts(path, text)  # never write a file the node would refuse to load
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def with_user(accounts: Accounts, user: DeskUser) -> Accounts:
    """``accounts`` with ``user`` added or replaced."""
    users = dict(accounts.users)
    users[user.id] = user
    return Accounts(users=users, demo=accounts.demo)


class AccountBook:
    """The node's view of its users file, re-read when the file changes."""

    def __init__(self, path: Path | None, *, demo_node: bool) -> None:
        self.path = path
        self._demo_node = demo_node
        self._stamp: tuple[int, int] | None = None
        self._accounts = Accounts(users={}, demo=False)

    def current(self) -> Accounts:
        """The accounts as the file holds them now; raises ``ConfigError`` if it is broken."""
        if self.path is None:
            return self._accounts
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or stamp is None:
            accounts = read_accounts(self.path)
            if accounts.demo and not self._demo_node:
                raise _fail(self.path, "demo", "demo accounts on a node that is not a demo node")
            self._accounts, self._stamp = accounts, stamp
        return self._accounts
