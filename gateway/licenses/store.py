"""The issuing node's license register: every license it signed, with its status.

One SQLite file per node (``<data_dir>/licenses.db``), WAL with ``synchronous=FULL``: a
revocation that was confirmed must survive a crash, since partners are told the status
from here. Several processes may use the file at once (the node, and ``tongban license
revoke`` run by an operator); SQLite's locking and a busy timeout serialise them.

``LicenseStore`` is the plain, synchronous store (the CLI and demo seeding use it);
``AsyncLicenseStore`` runs one on a dedicated thread so the event loop never waits for
a disk flush.

Status changes follow the issuer's rules: ``valid -> suspended -> valid`` and
``valid | suspended -> revoked``; a revoked license is never reinstated (issue a new
one), and a change to the status a license already has is a ``Conflict``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from gateway.config import NodeConfig
from gateway.errors import Conflict, NotFound, ServiceUnavailable
from gateway.licenses.document import LicenseDocument, read_document_bytes
from gateway.licenses.license_jws import SignedLicense, parse_license_jws
from gateway.licenses.status import LicenseStatus, StatusValue

__all__ = [
    "AsyncLicenseStore",
    "LicenseStore",
    "StoredLicense",
    "license_db_path",
]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS licenses (
    identifier  TEXT PRIMARY KEY,
    type_code   TEXT NOT NULL,
    serial      TEXT NOT NULL,
    issued_on   TEXT NOT NULL,
    valid_from  TEXT NOT NULL,
    valid_until TEXT,
    jws         TEXT NOT NULL,
    digest      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('valid', 'revoked', 'suspended')),
    since       TEXT NOT NULL,
    reason      TEXT
) WITHOUT ROWID
"""

_COLUMNS = (
    "identifier, type_code, issued_on, valid_from, valid_until, jws, digest, status, since, reason"
)

#: Which status a change may start from, by the status it leads to.
ALLOWED_FROM: dict[str, frozenset[str]] = {
    "revoked": frozenset({"valid", "suspended"}),
    "suspended": frozenset({"valid"}),
    "valid": frozenset({"suspended"}),
}


def license_db_path(cfg: NodeConfig) -> Path:
    """Where a node keeps its license register."""
    return cfg.data_dir / "licenses.db"


@dataclass(frozen=True)
class StoredLicense:
    """One row of the register."""

    identifier: str
    type_code: str
    issued_on: str
    valid_from: str
    valid_until: str | None
    jws: str
    digest: str
    status: LicenseStatus

    def document(self) -> LicenseDocument:
        """The signed document (the register only holds what it signed itself)."""
        return read_document_bytes(parse_license_jws(self.jws).payload)


def _row(row: tuple[object, ...]) -> StoredLicense:
    identifier, type_code, issued_on, valid_from, valid_until, jws, digest, status, since, why = row
    return StoredLicense(
        identifier=str(identifier),
        type_code=str(type_code),
        issued_on=str(issued_on),
        valid_from=str(valid_from),
        valid_until=None if valid_until is None else str(valid_until),
        jws=str(jws),
        digest=str(digest),
        status=LicenseStatus(
            identifier=str(identifier),
            status=cast(StatusValue, status),
            since=str(since),
            reason=None if why is None else str(why),
        ),
    )


class LicenseStore:
    """The register over one SQLite file; use from one thread at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        signed: SignedLicense,
        document: LicenseDocument,
        *,
        serial: str,
        since: str,
        status: StatusValue = "valid",
        reason: str | None = None,
    ) -> None:
        """Record a license this node signed; ``Conflict`` if the identifier exists."""
        try:
            self._db.execute(
                "INSERT INTO licenses (identifier, type_code, serial, issued_on, valid_from,"
                " valid_until, jws, digest, status, since, reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    signed.identifier,
                    document.type_code,
                    serial,
                    document.issued_on.isoformat(),
                    document.valid_from.isoformat(),
                    document.valid_until.isoformat() if document.valid_until else None,
                    signed.jws,
                    signed.digest,
                    status,
                    since,
                    reason,
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"license {signed.identifier} is already in the register") from None

    def replace_signature(self, signed: SignedLicense) -> None:
        """Store a new signature of the same document (demo data after new certificates)."""
        self._db.execute(
            "UPDATE licenses SET jws = ?, digest = ? WHERE identifier = ?",
            (signed.jws, signed.digest, signed.identifier),
        )

    def get(self, identifier: str) -> StoredLicense | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM licenses WHERE identifier = ?",  # noqa: S608 (constant)
            (identifier,),
        ).fetchone()
        return None if row is None else _row(row)

    def status(self, identifier: str) -> LicenseStatus:
        """The status of a license this node issued; ``NotFound`` for any other."""
        row = self._db.execute(
            "SELECT status, since, reason FROM licenses WHERE identifier = ?", (identifier,)
        ).fetchone()
        if row is None:
            raise NotFound("this node has not issued that license")
        status, since, why = row
        return LicenseStatus(
            identifier=identifier,
            status=cast(StatusValue, status),
            since=str(since),
            reason=None if why is None else str(why),
        )

    def set_status(
        self, identifier: str, status: StatusValue, *, reason: str, since: str
    ) -> tuple[LicenseStatus, LicenseStatus]:
        """Change a license's status; returns ``(before, after)``.

        ``NotFound`` for a license this node did not issue, ``Conflict`` for a change
        the rules in the module docstring do not allow.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self.status(identifier)
            if before.status not in ALLOWED_FROM[status]:
                raise Conflict(f"a {before.status} license cannot become {status}")
            self._db.execute(
                "UPDATE licenses SET status = ?, since = ?, reason = ? WHERE identifier = ?",
                (status, since, reason, identifier),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return before, LicenseStatus(identifier, status, since, reason)

    def list(self, *, limit: int = 10_000) -> list[StoredLicense]:
        """Licenses in identifier order, at most ``limit`` of them."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM licenses ORDER BY identifier LIMIT ?",  # noqa: S608
            (limit,),
        ).fetchall()
        return [_row(r) for r in rows]

    def next_serial(self, year: int) -> str:
        """The next free serial of a year: two year digits and five sequence digits.

        Serials are the year's largest plus one, so demo data and issued licenses
        share one sequence (GB/T 36904 leaves the serial's form to the issuer).
        """
        prefix = f"{year % 100:02d}"
        row = self._db.execute(
            "SELECT MAX(serial) FROM licenses WHERE length(serial) = 7 AND serial LIKE ?",
            (prefix + "%",),
        ).fetchone()
        last = int(row[0][2:]) if row and row[0] and row[0][2:].isdigit() else 0
        if last >= 99_999:
            raise Conflict(f"no serials left for {year}")
        return f"{prefix}{last + 1:05d}"

    def ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()


_NOT_ISSUED = object()
"""Marks an identifier the register does not hold, in the status cache."""


class _StatusCache:
    """Statuses already read, valid for as long as nobody has written the register.

    Every partner call that verifies one of this node's own licenses asks for its
    status; reading it on the store's thread costs a thread hand-off and a row read
    for an answer that rarely changes. ``PRAGMA data_version`` on a read-only
    connection of the event loop's own tells, in a few microseconds and without disk
    I/O, whether *any other connection* committed since the cache was filled: the
    store's own thread, or ``tongban license revoke`` run by an operator in another
    process. Any change empties the whole cache, so a revocation is seen by the very
    next verification, exactly as without the cache.

    When the version cannot be read (the file is busy, being recovered, or gone) the
    cache is bypassed for that call, never trusted.
    """

    def __init__(self, path: Path, *, max_entries: int = 100_000) -> None:
        self._path = path
        self._max = max_entries
        self._reader: sqlite3.Connection | None = None
        self._version: int | None = None
        self._entries: dict[str, object] = {}

    def version(self) -> int | None:
        """The register's data version now, or ``None`` when it cannot be read."""
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(
                    f"{self._path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    timeout=0,
                    isolation_level=None,
                )
            row = self._reader.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            self.close()
            return None
        version = int(row[0])
        if version != self._version:
            self._entries.clear()
            self._version = version
        return version

    def get(self, identifier: str) -> object | None:
        """The cached status, ``_NOT_ISSUED``, or ``None`` when not cached."""
        return self._entries.get(identifier)

    def put(self, version: int, identifier: str, value: object) -> None:
        """Remember a value read after ``version`` was seen, unless the version moved."""
        if version != self._version:
            return  # read under an older version: it may already be out of date
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[identifier] = value

    def close(self) -> None:
        self._entries.clear()
        self._version = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class AsyncLicenseStore:
    """A ``LicenseStore`` on its own thread, for the event loop.

    Each call is a few statements; with ``synchronous=FULL`` a write ends in an fsync,
    which must not stall other requests. One thread also keeps the connection on the
    thread that made it, as sqlite3 requires. ``status`` answers from a cache that is
    exact (see ``_StatusCache``), since every verification of a local license asks.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="licenses-sqlite")
        self._store: LicenseStore | None = None
        self._closed = False
        self._statuses = _StatusCache(path)

    def _open(self) -> LicenseStore:
        if self._store is None:
            self._store = LicenseStore(self._path)
        return self._store

    async def _run(self, fn: Callable[[LicenseStore], _T]) -> _T:
        if self._closed:
            raise ServiceUnavailable("the license register is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(self._open()))
        except sqlite3.Error as exc:
            raise ServiceUnavailable(f"the license register failed: {type(exc).__name__}") from exc

    async def get(self, identifier: str) -> StoredLicense | None:
        return await self._run(lambda s: s.get(identifier))

    async def status(self, identifier: str) -> LicenseStatus:
        """The status of a license this node issued; ``NotFound`` for any other."""
        if self._closed:
            raise ServiceUnavailable("the license register is closed")
        version = self._statuses.version() if self._store is not None else None
        if version is not None:
            cached = self._statuses.get(identifier)
            if isinstance(cached, LicenseStatus):
                return cached
            if cached is _NOT_ISSUED:
                raise NotFound("this node has not issued that license")
        try:
            found: object = await self._run(lambda s: s.status(identifier))
        except NotFound:
            found = _NOT_ISSUED
        if version is not None:
            self._statuses.put(version, identifier, found)
        if not isinstance(found, LicenseStatus):
            raise NotFound("this node has not issued that license")
        return found

    async def set_status(
        self, identifier: str, status: StatusValue, *, reason: str, since: str
    ) -> tuple[LicenseStatus, LicenseStatus]:
        # No cache invalidation here: the commit is another connection's, which
        # ``PRAGMA data_version`` shows to the status cache like any other writer's.
        return await self._run(
            lambda s: s.set_status(identifier, status, reason=reason, since=since)
        )

    async def add(
        self, signed: SignedLicense, document: LicenseDocument, *, serial: str, since: str
    ) -> None:
        await self._run(lambda s: s.add(signed, document, serial=serial, since=since))

    async def next_serial(self, year: int) -> str:
        return await self._run(lambda s: s.next_serial(year))

    async def list(self, *, limit: int = 10_000) -> list[StoredLicense]:
        return await self._run(lambda s: s.list(limit=limit))

    async def ping(self) -> None:
        await self._run(lambda s: s.ping())

    async def close(self) -> None:
        """Close the file on its thread and stop the thread; safe to call twice."""
        if self._closed:
            return
        try:
            if self._store is not None:
                await self._run(lambda s: s.close())
        finally:
            self._closed = True
            self._statuses.close()
            self._executor.shutdown(wait=False)
