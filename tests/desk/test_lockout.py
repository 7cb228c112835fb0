"""Sign-in lockout per account name and per client address, driven by an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.desk.accounts import AccountBook, Accounts, DeskUser, write_accounts
from gateway.desk.auth import DeskAuth
from gateway.desk.database import DeskDatabase
from gateway.desk.errors import LOCKED_DETAIL, SignInFailed, SignInLocked
from gateway.desk.lockout import Lockout
from gateway.desk.passwords import hash_password, parse_hash
from gateway.desk.sessions import SessionStore

PASSWORD = "right-password"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[DeskAuth, Clock]]:
    stored = hash_password(PASSWORD, log2_n=10)
    users = {"staff01": DeskUser("staff01", "staff", parse_hash(stored), stored)}
    write_accounts(tmp_path / "users.toml", Accounts(users=users, demo=False))
    db = DeskDatabase(tmp_path / "desk.db")
    secret = await db.secret("desk")
    clock = Clock()
    auth = DeskAuth(
        AccountBook(tmp_path / "users.toml", demo_node=False),
        SessionStore(db, secret, clock=clock),
        Lockout(db, secret, clock=clock),
    )
    yield auth, clock
    await db.close()


async def fail_times(auth: DeskAuth, n: int, user: str, address: str) -> None:
    for _ in range(n):
        with pytest.raises(SignInFailed):
            await auth.sign_in(user, "wrong-password", address)


async def test_five_failures_lock_the_account_for_15_minutes(desk: tuple[DeskAuth, Clock]) -> None:
    auth, clock = desk
    await fail_times(auth, 5, "staff01", "10.0.0.1")
    with pytest.raises(SignInLocked) as exc:
        await auth.sign_in("staff01", PASSWORD, "10.0.0.2")  # right password, other desk
    assert exc.value.code == "sign_in_locked"
    assert exc.value.status == 429
    assert exc.value.retry_after == 15 * 60
    clock.now += 15 * 60 - 1
    with pytest.raises(SignInLocked):
        await auth.sign_in("staff01", PASSWORD, "10.0.0.2")
    clock.now += 2
    signed = await auth.sign_in("staff01", PASSWORD, "10.0.0.2")
    assert signed.user.id == "staff01"


async def test_unknown_accounts_lock_the_same_way(desk: tuple[DeskAuth, Clock]) -> None:
    auth, _ = desk
    await fail_times(auth, 5, "nobody", "10.0.0.1")
    with pytest.raises(SignInLocked) as exc:
        await auth.sign_in("nobody", "whatever-it-is", "10.0.0.3")
    assert exc.value.detail == LOCKED_DETAIL  # same words as for a real account


async def test_failures_spread_over_time_do_not_lock(desk: tuple[DeskAuth, Clock]) -> None:
    auth, clock = desk
    await fail_times(auth, 4, "staff01", "10.0.0.1")
    clock.now += 15 * 60 + 1  # the window has passed: the count starts again
    await fail_times(auth, 4, "staff01", "10.0.0.1")
    assert (await auth.sign_in("staff01", PASSWORD, "10.0.0.1")).user.id == "staff01"


async def test_success_resets_the_account_counter(desk: tuple[DeskAuth, Clock]) -> None:
    auth, _ = desk
    await fail_times(auth, 4, "staff01", "10.0.0.1")
    await auth.sign_in("staff01", PASSWORD, "10.0.0.1")
    await fail_times(auth, 4, "staff01", "10.0.0.1")
    await auth.sign_in("staff01", PASSWORD, "10.0.0.1")


async def test_one_address_guessing_many_names_is_locked(desk: tuple[DeskAuth, Clock]) -> None:
    auth, clock = desk
    for i in range(20):
        await fail_times(auth, 1, f"guess{i}", "10.9.9.9")
    with pytest.raises(SignInLocked):
        await auth.sign_in("staff01", PASSWORD, "10.9.9.9")
    # the account itself is not locked: another desk signs in
    assert (await auth.sign_in("staff01", PASSWORD, "10.0.0.5")).user.id == "staff01"
    clock.now += 15 * 60 + 1
    assert (await auth.sign_in("staff01", PASSWORD, "10.9.9.9")).user.id == "staff01"


async def test_user_names_are_case_insensitive(desk: tuple[DeskAuth, Clock]) -> None:
    auth, _ = desk
    await fail_times(auth, 5, "STAFF01", "10.0.0.1")
    with pytest.raises(SignInLocked):
        await auth.sign_in("staff01", PASSWORD, "10.0.0.7")
