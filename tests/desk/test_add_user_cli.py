"""``tongban desk add-user``: accounts written atomically, audited, one-line refusals."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.audit.entry import parse_entry
from gateway.audit.service import open_audit_store
from gateway.cli.main import main
from gateway.desk.accounts import read_accounts
from gateway.desk.database import DeskDatabase
from gateway.desk.passwords import verify_password
from gateway.desk.sessions import SessionStore
from gateway.desk.setup import DB_NAME
from tests.support.network import ROOT, Tree

JIAN = "cn-360800"


def run(
    tree: Tree,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["desk", "add-user", "--config", str(tree.config_path(JIAN)), *args])
    out, err = capsys.readouterr()
    return code, out, err


def users_file(tree: Tree) -> Path:
    return tree.root / "config" / "demo" / "desk-users.toml"


async def last_entry(tree: Tree) -> object:
    async with open_audit_store(tree.config(JIAN)) as log:
        return parse_entry(await log.entry(log.size - 1))


def test_add_a_staff_account(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(
        tree,
        capsys,
        monkeypatch,
        "--user",
        "staff02",
        "--role",
        "staff",
        "--password-stdin",
        "--json",
        stdin="hall-desk-2026\n",
    )
    assert (code, err) == (0, "")
    answer = json.loads(out)
    assert answer["user"] == "staff02" and answer["replaced"] is False
    accounts = read_accounts(users_file(tree))
    assert sorted(accounts.users) == ["audit01", "staff01", "staff02"]  # demo accounts kept
    assert accounts.demo is True
    verify_password(accounts.users["staff02"].password, "hall-desk-2026")
    assert oct(users_file(tree).stat().st_mode & 0o777) == "0o600"
    entry = asyncio.run(last_entry(tree))
    assert entry.event == "desk.user_add"  # type: ignore[attr-defined]
    assert (entry.actor.type, entry.actor.sub) == ("system", "cli")  # type: ignore[attr-defined]
    assert entry.meta["user"] == "staff02" and entry.meta["role"] == "staff"  # type: ignore[attr-defined]
    assert "hall-desk-2026" not in json.dumps(entry.to_dict())  # type: ignore[attr-defined]


def test_replace_changes_the_password_and_ends_open_sessions(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tree.config(JIAN)

    async def open_session() -> str:
        db = DeskDatabase(cfg.data_dir / DB_NAME)
        try:
            store = SessionStore(db, await db.secret("desk"))
            return (await store.create("staff01", "staff")).cookie
        finally:
            await db.close()

    async def still_open(cookie: str) -> bool:
        db = DeskDatabase(cfg.data_dir / DB_NAME)
        try:
            return await SessionStore(db, await db.secret("desk")).get(cookie) is not None
        finally:
            await db.close()

    cookie = asyncio.run(open_session())
    code, _, err = run(
        tree,
        capsys,
        monkeypatch,
        "--user",
        "staff01",
        "--role",
        "staff",
        "--password-stdin",
        stdin="a-new-password",
    )
    assert err == "tongban: desk user staff01 exists already (use --replace to change it)\n"
    assert code == 2
    code, out, _ = run(
        tree,
        capsys,
        monkeypatch,
        "--user",
        "staff01",
        "--role",
        "admin",
        "--password-stdin",
        "--replace",
        stdin="a-new-password\n",
    )
    assert code == 0 and "changed desk user staff01 (admin)" in out
    user = read_accounts(users_file(tree)).users["staff01"]
    assert user.role == "admin"
    verify_password(user.password, "a-new-password")
    assert asyncio.run(still_open(cookie)) is False


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["--user", "Staff 03", "--role", "staff", "--password-stdin"],
            "long-enough-1",
            "tongban: --user: 1-64 characters of a-z 0-9 . _ - starting with a letter or digit\n",
        ),
        (
            ["--user", "staff03", "--role", "staff", "--password-stdin"],
            "short\n",
            "tongban: a desk password has at least 10 characters\n",
        ),
        (
            ["--user", "staff03", "--role", "staff"],
            "",
            "tongban: no terminal to ask for the password: pipe it in with --password-stdin\n",
        ),
    ],
)
def test_refusals_are_one_line(
    tree: Tree,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    message: str,
) -> None:
    before = users_file(tree).read_bytes()
    code, _, err = run(tree, capsys, monkeypatch, *args, stdin=stdin)
    assert (code, err) == (2, message)
    assert users_file(tree).read_bytes() == before


def test_unknown_role_is_refused_by_the_parser(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exc:
        run(tree, capsys, monkeypatch, "--user", "x1", "--role", "boss")
    assert exc.value.code == 2
    assert "invalid choice: 'boss'" in capsys.readouterr().err


def test_a_node_without_a_users_file(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tree.config_path("cn-330800")
    monkeypatch.setattr(sys, "stdin", io.StringIO("long-enough-1\n"))
    code = main(
        [
            "desk",
            "add-user",
            "--config",
            str(path),
            "--user",
            "s1",
            "--role",
            "staff",
            "--password-stdin",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.endswith(
        ': [node] has no desk_users file; add desk_users = "desk-users.toml"\n'
    )


def test_demo_accounts_never_land_on_a_real_node(
    tree: Tree, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tree.config_path(JIAN)
    path.write_text(path.read_text().replace("demo = true", "demo = false"))
    code, _, err = run(
        tree,
        capsys,
        monkeypatch,
        "--user",
        "staff09",
        "--role",
        "staff",
        "--password-stdin",
        stdin="long-enough-1\n",
    )
    assert code == 2
    assert err.endswith(f"holds demo accounts and {JIAN} is not a demo node\n")


def test_help_and_a_real_process(tree: Tree) -> None:
    """The console entry point, as an operator runs it: password on stdin, JSON out."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "desk",
            "add-user",
            "--config",
            str(tree.config_path(JIAN)),
            "--user",
            "audit02",
            "--role",
            "auditor",
            "--password-stdin",
            "--json",
        ],
        input="auditor-pass-1\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["role"] == "auditor"
