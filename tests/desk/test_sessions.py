"""Server-side desk sessions: expiry by idle and absolute time, sign-out, CSRF binding."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.desk.database import DeskDatabase
from gateway.desk.sessions import (
    ABSOLUTE_SECONDS,
    IDLE_SECONDS,
    SessionStore,
    check_csrf,
    csrf_token,
)
from gateway.errors import Forbidden


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[DeskDatabase]:
    database = DeskDatabase(tmp_path / "desk.db")
    yield database
    await database.close()


async def test_session_lives_until_idle_timeout(db: DeskDatabase) -> None:
    clock = Clock()
    store = SessionStore(db, await db.secret("desk"), clock=clock)
    new = await store.create("staff01", "staff")
    clock.now += IDLE_SECONDS - 60
    assert (await store.get(new.cookie)) is not None  # touches last_seen
    clock.now += IDLE_SECONDS - 60
    assert (await store.get(new.cookie)) is not None
    clock.now += IDLE_SECONDS + 1
    assert await store.get(new.cookie) is None


async def test_session_ends_after_a_working_day_even_when_busy(db: DeskDatabase) -> None:
    clock = Clock()
    store = SessionStore(db, await db.secret("desk"), clock=clock)
    new = await store.create("staff01", "staff")
    for _ in range(int(ABSOLUTE_SECONDS // 600) - 1):
        clock.now += 600
        assert await store.get(new.cookie) is not None
    clock.now += 601
    assert await store.get(new.cookie) is None


async def test_sign_out_ends_the_session_for_every_process(
    db: DeskDatabase, tmp_path: Path
) -> None:
    secret = await db.secret("desk")
    store = SessionStore(db, secret)
    new = await store.create("audit01", "auditor")
    other = DeskDatabase(tmp_path / "desk.db")  # a second process's view of the same file
    try:
        assert await other.secret("desk") == secret
        assert (await SessionStore(other, secret).get(new.cookie)) is not None
        await store.end(new.cookie)
        assert await SessionStore(other, secret).get(new.cookie) is None
    finally:
        await other.close()


async def test_database_holds_no_usable_cookie(db: DeskDatabase, tmp_path: Path) -> None:
    store = SessionStore(db, await db.secret("desk"))
    new = await store.create("staff01", "staff")
    await db.close()
    raw = sqlite3.connect(tmp_path / "desk.db").execute("SELECT * FROM sessions").fetchall()
    assert new.cookie not in repr(raw)
    assert new.csrf not in repr(raw)


async def test_unknown_or_malformed_cookies_open_nothing(db: DeskDatabase) -> None:
    store = SessionStore(db, await db.secret("desk"))
    assert await store.get(None) is None
    assert await store.get("x" * 500) is None
    assert await store.get("会话") is None
    assert await store.get("not-a-session") is None


async def test_csrf_token_is_tied_to_its_session(db: DeskDatabase) -> None:
    secret = await db.secret("desk")
    store = SessionStore(db, secret)
    a = await store.create("staff01", "staff")
    b = await store.create("staff01", "staff")
    assert a.csrf != b.csrf
    check_csrf(secret, "csrf", a.cookie, a.csrf)
    for cookie, sent in [(a.cookie, b.csrf), (a.cookie, None), (None, a.csrf), (a.cookie, "")]:
        with pytest.raises(Forbidden) as exc:
            check_csrf(secret, "csrf", cookie, sent)
        assert exc.value.code == "forbidden"
    # a pre-session token never passes as a session token
    with pytest.raises(Forbidden):
        check_csrf(secret, "csrf", a.cookie, csrf_token(secret, "pre", a.cookie))
