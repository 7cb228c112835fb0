"""Audit export (审计导出): what an auditor takes away and verifies offline (SPEC 6).

An export is a directory::

    entries.jsonl   one entry per line: exactly the stored (hashed) bytes, then "\\n"
    checkpoints     every signed checkpoint note with its cosignatures, by tree size,
                    each note followed by one empty line
    log.vkey        the node's log verifier key (C2SP form), one line

Why one ``checkpoints`` file and not a file per checkpoint: a busy node signs a
checkpoint every 256 entries, so a day's log would be hundreds of thousands of tiny
files. A checkpoint body never holds an empty line, so a note is its body lines, one
empty line, its signature lines (``— ...``), and the next note starts after the next
empty line; ``read_checkpoints`` splits the file exactly so.

The export is taken from one SQLite read transaction, so entries and checkpoints are a
consistent snapshot even while the node keeps writing; checkpoints larger than the
exported log are left out. Files are written under temporary names and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gateway.audit.merkle import CompactRange
from gateway.audit.store import DB_NAME, AuditStore, as_blob
from gateway.errors import NotFound

__all__ = [
    "CHECKPOINTS_FILE",
    "ENTRIES_FILE",
    "VKEY_FILE",
    "ExportSummary",
    "Progress",
    "database_path",
    "export",
    "read_checkpoints",
]

ENTRIES_FILE = "entries.jsonl"
CHECKPOINTS_FILE = "checkpoints"
VKEY_FILE = "log.vkey"

Progress = Callable[[int, int | None], None]
"""``progress(done, total)`` for long work; ``total`` is ``None`` when unknown."""

_PROGRESS_EVERY = 16384


@dataclass(frozen=True)
class ExportSummary:
    """What was written: entry and checkpoint counts and the tree root over the entries."""

    out_dir: Path
    entries: int
    checkpoints: int
    root: bytes


def database_path(source: AuditStore | str | Path) -> Path:
    """The audit database of a store, a data directory, or the database file itself."""
    if isinstance(source, AuditStore):
        return source.db_path
    path = Path(source)
    for candidate in (path, path / DB_NAME, path / "audit" / DB_NAME):
        if candidate.is_file():
            return candidate
    raise NotFound(f"no audit database at {path}")


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection (never creates or changes the file)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)


def export(
    source: AuditStore | str | Path,
    out_dir: str | Path,
    *,
    vkey: str | None = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the export directory of SPEC 6 from a store or its database.

    ``vkey`` is the log verifier key to include (``certs/<node>/log.vkey``); without it
    the key recorded in the database is used. Blocking: call it from a thread when an
    event loop is running.
    """
    db = database_path(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    conn = connect_readonly(db)
    try:
        conn.execute("BEGIN")  # one snapshot for entries and checkpoints
        if vkey is None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'log_vkey'").fetchone()
            if row is None:
                raise NotFound("no log verifier key given and none recorded in the database")
            vkey = str(row[0])
        top = conn.execute("SELECT max(seq) FROM entries").fetchone()[0]
        total = 0 if top is None else int(top) + 1
        tree = CompactRange()
        count = 0
        with _atomic(out / ENTRIES_FILE) as f:
            leaves: list[bytes] = []
            for (data,) in conn.execute("SELECT bytes FROM entries ORDER BY seq"):
                data = as_blob(data)
                f.write(data)
                f.write(b"\n")
                leaves.append(_leaf(data))
                count += 1
                if len(leaves) >= _PROGRESS_EVERY:
                    tree.extend(leaves)
                    leaves.clear()
                    if progress is not None:
                        progress(count, total)
            tree.extend(leaves)
        checkpoints = 0
        with _atomic(out / CHECKPOINTS_FILE) as f:
            for note, cosignatures in conn.execute(
                "SELECT note, cosignatures FROM checkpoints WHERE size <= ? ORDER BY size",
                (count,),
            ):
                f.write((note + cosignatures).encode("utf-8"))
                f.write(b"\n")
                checkpoints += 1
        with _atomic(out / VKEY_FILE) as f:
            f.write(vkey.strip().encode("utf-8") + b"\n")
        conn.execute("COMMIT")
    finally:
        conn.close()
    if progress is not None:
        progress(count, total)
    return ExportSummary(out, count, checkpoints, tree.root())


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[BinaryIO]:
    """Write ``path`` under a temporary name, fsync, then rename it into place."""
    tmp = path.with_name(path.name + ".tmp")
    f = tmp.open("wb", buffering=1 << 20)
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise
    f.close()
    tmp.replace(path)


def read_checkpoints(path: str | Path) -> Iterator[bytes]:
    """The notes of a ``checkpoints`` file, one by one, each as its exact bytes.

    A note is body lines, an empty line, signature lines; an empty line ends it.
    Malformed notes are returned as they are, for the verifier to reject by name.
    """
    body: list[bytes] = []
    sigs: list[bytes] = []
    in_sigs = False
    with Path(path).open("rb") as f:
        for line in f:
            if line == b"\n":
                if in_sigs:
                    yield b"".join(body) + b"\n" + b"".join(sigs)
                    body, sigs, in_sigs = [], [], False
                elif body:
                    in_sigs = True
                continue
            (sigs if in_sigs else body).append(line)
    if body:
        yield b"".join(body) + (b"\n" + b"".join(sigs) if in_sigs else b"")
