"""Sign-in for desk users: lockout first, then scrypt off the event loop, then a session.

Hashing is limited to ``MAX_CONCURRENT_HASHES`` at a time: each scrypt check holds
64 MiB, and a burst of sign-in attempts must not exhaust the node's memory or starve
its partners' requests of CPU.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gateway.desk.accounts import AccountBook, DeskUser, Role
from gateway.desk.errors import SignInFailed
from gateway.desk.lockout import Lockout
from gateway.desk.passwords import MAX_PASSWORD, verify_password
from gateway.desk.sessions import NewSession, Session, SessionStore

MAX_CONCURRENT_HASHES = 2
MAX_USER_ID = 64


@dataclass(frozen=True)
class SignedIn:
    user: DeskUser
    session: NewSession


class DeskAuth:
    """Accounts, sessions and lockout of one node's desk."""

    def __init__(self, book: AccountBook, sessions: SessionStore, lockout: Lockout) -> None:
        self.book = book
        self.sessions = sessions
        self.lockout = lockout
        self._hashing = asyncio.Semaphore(MAX_CONCURRENT_HASHES)

    async def sign_in(self, user_id: str, password: str, address: str) -> SignedIn:
        """Check the password and start a session.

        Raises ``SignInLocked`` while the account name or the address is locked and
        ``SignInFailed`` for a wrong name or password alike (same detail, same cost).
        """
        keys = self.lockout.keys(user_id[:MAX_USER_ID], address)
        await self.lockout.check(keys)
        accounts = self.book.current()
        user = accounts.get(user_id.strip().lower())
        stored = user.password if user is not None else accounts.stand_in()
        try:
            if len(password) > MAX_PASSWORD:
                raise SignInFailed()
            async with self._hashing:
                await asyncio.to_thread(verify_password, stored, password)
            if user is None:
                raise SignInFailed()
        except SignInFailed:
            await self.lockout.failed(keys)
            raise
        await self.lockout.succeeded(keys)
        return SignedIn(user=user, session=await self.sessions.create(user.id, user.role))

    async def session(self, cookie: str | None) -> Session | None:
        """The live session of a cookie whose account still exists with the same role."""
        session = await self.sessions.get(cookie)
        if session is None:
            return None
        user = self.book.current().get(session.user)
        if user is None or user.role != session.role:
            await self.sessions.end(cookie)  # the account was removed or changed role
            return None
        return session

    def known_user(self, user_id: str) -> str | None:
        """The account id if it exists (for the audit entry of a failed sign-in)."""
        user = self.book.current().get(user_id.strip().lower())
        return user.id if user is not None else None


def may(role: Role, needed: Role) -> bool:
    """Admins may act as staff and as auditors; everyone else only in their own role."""
    return role == needed or role == "admin"
