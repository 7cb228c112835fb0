"""The desk users file: strict loading, atomic rewrite, demo accounts only on demo nodes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.desk.accounts import (
    AccountBook,
    Accounts,
    DeskUser,
    read_accounts,
    with_user,
    write_accounts,
)
from gateway.desk.passwords import hash_password, parse_hash
from gateway.errors import ConfigError

HASH = hash_password("0123456789", log2_n=10)


def user(uid: str, role: str = "staff") -> DeskUser:
    return DeskUser(id=uid, role=role, password=parse_hash(HASH), password_text=HASH)  # type: ignore[arg-type]


def test_write_then_read_round_trip_with_private_mode(tmp_path: Path) -> None:
    path = tmp_path / "desk-users.toml"
    write_accounts(
        path, Accounts(users={"a1": user("a1"), "b2": user("b2", "auditor")}, demo=False)
    )
    loaded = read_accounts(path)
    assert sorted(loaded.users) == ["a1", "b2"]
    assert loaded.users["b2"].role == "auditor"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_missing_file_is_no_accounts(tmp_path: Path) -> None:
    assert read_accounts(tmp_path / "none.toml").users == {}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[users.staff01]\nrole = 'boss'\npassword = '" + HASH + "'\n", "users.staff01.role"),
        ("[users.Staff01]\nrole = 'staff'\npassword = '" + HASH + "'\n", "users.Staff01"),
        ("[users.staff01]\nrole = 'staff'\n", "users.staff01.password"),
        ("[users.staff01]\nrole = 'staff'\npassword = 'plain'\n", "users.staff01.password"),
        (
            "[users.staff01]\nrole = 'staff'\npassword = '" + HASH + "'\nname = 'x'\n",
            "users.staff01.name",
        ),
        ("demo = 'yes'\n", "demo"),
        ("admins = []\n", "admins"),
        ("[users\n", "-"),
    ],
)
def test_broken_files_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "u.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        read_accounts(path)
    assert exc.value.code == "config_invalid"
    assert exc.value.key == key


def test_demo_file_refused_on_a_real_node(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    write_accounts(path, Accounts(users={"staff01": user("staff01")}, demo=True))
    assert AccountBook(path, demo_node=True).current().get("staff01") is not None
    with pytest.raises(ConfigError) as exc:
        AccountBook(path, demo_node=False).current()
    assert exc.value.key == "demo"


def test_book_sees_a_new_account_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "u.toml"
    write_accounts(path, Accounts(users={"a1": user("a1")}, demo=False))
    book = AccountBook(path, demo_node=False)
    assert book.current().get("b2") is None
    write_accounts(path, with_user(read_accounts(path), user("b2")))
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    assert book.current().get("b2") is not None
