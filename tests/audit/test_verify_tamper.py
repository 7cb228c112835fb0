"""The auditor's verifier names the first bad entry, and why, for every kind of tampering."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.entry import parse_entry
from gateway.audit.export import CHECKPOINTS_FILE, ENTRIES_FILE, VKEY_FILE, export, read_checkpoints
from gateway.audit.merkle import CompactRange, leaf_hash
from gateway.audit.note import (
    Checkpoint,
    cosign,
    cosigner_verifier_key,
    parse_note,
    sign_note,
    verifier_key,
)
from gateway.audit.store import DB_NAME, AuditStore
from gateway.audit.verify import (
    REASONS,
    VerifySetupError,
    verify_database,
    verify_export,
)
from gateway.encoding import b64u_encode
from gateway.keys import log_origin

from .conftest import NODE, fill, make_clock

N = 600
EVERY = 64
ORIGIN = log_origin(NODE)
WITNESS = "tongban/cn-330800/witness"


class Log:
    """A pristine export (built once per module) plus the keys that made it."""

    def __init__(self, root: Path) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.vkey = verifier_key(ORIGIN, self.key.public_key())
        self.witness_key = Ed25519PrivateKey.generate()
        self.witness_vkey = cosigner_verifier_key(WITNESS, self.witness_key.public_key())
        self.data_dir = root / "node"
        self.export_dir = root / "export"
        asyncio.run(self._build())
        self.lines = (self.export_dir / ENTRIES_FILE).read_bytes().splitlines()
        self.notes = list(read_checkpoints(self.export_dir / CHECKPOINTS_FILE))

    async def _build(self) -> None:
        store = AuditStore(self.data_dir, NODE, log_vkey=self.vkey, clock=make_clock())
        await store.open()
        try:
            await fill(store, N, payload=True)
            await Checkpointer(store, self.key, every=EVERY).checkpoint_now()
            note = await store.checkpoint(N)
            assert note is not None
            line = cosign(parse_note(note).body, WITNESS, self.witness_key, 1_795_910_400)
            await store.add_cosignatures(N, line)
            export(store, self.export_dir)
        finally:
            await store.close()

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.export_dir, dest, dirs_exist_ok=True)
        return dest


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return Log(tmp_path_factory.mktemp("audit-log"))


def write_lines(directory: Path, lines: list[bytes], *, final_newline: bool = True) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    (directory / ENTRIES_FILE).write_bytes(data)


def write_notes(directory: Path, notes: list[bytes]) -> None:
    (directory / CHECKPOINTS_FILE).write_bytes(b"".join(n + b"\n" for n in notes))


def flip(line: bytes, position: int, mask: int = 0x01) -> bytes:
    return line[:position] + bytes([line[position] ^ mask]) + line[position + 1 :]


def rechain(lines: list[bytes], start: int) -> list[bytes]:
    """Recompute ``prev`` from entry ``start`` on, as a forger rewriting history would."""
    out = list(lines)
    for i in range(max(start, 1), len(out)):
        obj = json.loads(out[i])
        obj["prev"] = b64u_encode(leaf_hash(out[i - 1]))
        out[i] = parse_entry_bytes(obj)
    return out


def parse_entry_bytes(obj: dict[str, object]) -> bytes:
    data: bytes = rfc8785.dumps(obj)
    parse_entry(data)
    return data


def sign_all(lines: list[bytes], key: Ed25519PrivateKey, sizes: list[int]) -> list[bytes]:
    notes = []
    for size in sizes:
        tree = CompactRange()
        tree.extend(leaf_hash(line) for line in lines[:size])
        notes.append(sign_note(Checkpoint(ORIGIN, size, tree.root()).body(), ORIGIN, key))
    return notes


def sizes() -> list[int]:
    return [*range(EVERY, N, EVERY), N]


# ---------------------------------------------------------------- intact


def test_intact_export_verifies(log: Log, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    report = verify_export(
        log.copy(tmp_path / "x"),
        vkey=log.vkey,
        witnesses=[log.witness_vkey],
        progress=lambda done, total: calls.append((done, total)),
    )
    assert report.ok and report.first_bad is None
    assert report.entries == N
    assert report.checkpoints == len(sizes()) == len(log.notes)
    tree = CompactRange()
    tree.extend(leaf_hash(line) for line in log.lines)
    assert report.root == tree.root()
    assert calls[-1] == (N, N)
    assert set(report.to_json()) == {"ok", "entries", "root", "checkpoints", "first_bad"}
    assert report.to_json()["first_bad"] is None
    assert (tmp_path / "x" / VKEY_FILE).read_text().strip() == log.vkey
    # The default key is the export's own log.vkey; strict mode parses every entry.
    assert verify_export(tmp_path / "x", strict=True).ok


def test_intact_database_verifies(log: Log) -> None:
    report = verify_database(log.data_dir, log.vkey, witnesses=[log.witness_vkey])
    assert report.ok and report.entries == N and report.checkpoints == len(log.notes)


# ---------------------------------------------------------------- changed bytes


def first_bad(directory: Path, log: Log, **kwargs: object) -> tuple[int, str]:
    report = verify_export(directory, vkey=log.vkey, **kwargs)  # type: ignore[arg-type]
    assert not report.ok and report.first_bad is not None
    assert report.first_bad.reason in REASONS
    json.dumps(report.to_json())
    return report.first_bad.seq, report.first_bad.reason


def field_position(line: bytes, key: bytes) -> int:
    return line.rfind(b'"' + key + b'":') + len(key) + 4


@pytest.mark.parametrize("k", [0, 1, 63, 64, 65, 300, 511, 598, 599])
@pytest.mark.parametrize("where", [b"event", b"prev", b"seq", b"ts", b"meta", b"v"])
def test_changed_byte_names_that_entry(log: Log, tmp_path: Path, k: int, where: bytes) -> None:
    lines = list(log.lines)
    lines[k] = flip(lines[k], field_position(lines[k], where))
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    assert first_bad(directory, log) == (k, "entry_changed")


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_byte_flip_names_that_entry(log: Log, tmp_path: Path, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, N - 1), label="entry")
    position = data.draw(st.integers(0, len(log.lines[k]) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="xor")
    lines = list(log.lines)
    lines[k] = flip(lines[k], position, mask)
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    assert first_bad(directory, log) == (k, "entry_changed")


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("k", [0, 1, 100, 256, 598])
def test_deleted_entry_is_a_gap_at_its_seq(log: Log, tmp_path: Path, k: int) -> None:
    lines = list(log.lines)
    del lines[k]
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    assert first_bad(directory, log) == (k, "sequence_gap")


@pytest.mark.parametrize(("a", "b"), [(0, 1), (10, 11), (100, 400), (63, 64), (598, 599)])
def test_swapped_entries_name_the_first_position(log: Log, tmp_path: Path, a: int, b: int) -> None:
    lines = list(log.lines)
    lines[a], lines[b] = lines[b], lines[a]
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    assert first_bad(directory, log) == (a, "out_of_order")


def test_duplicated_entry(log: Log, tmp_path: Path) -> None:
    lines = list(log.lines)
    lines.insert(201, lines[200])
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    assert first_bad(directory, log) == (201, "out_of_order")


@pytest.mark.parametrize("keep", [0, 1, 300, 599])
def test_truncated_below_a_signed_size(log: Log, tmp_path: Path, keep: int) -> None:
    directory = log.copy(tmp_path / "x")
    write_lines(directory, log.lines[:keep])
    assert first_bad(directory, log) == (keep, "truncated")


def test_file_cut_inside_the_last_entry(log: Log, tmp_path: Path) -> None:
    directory = log.copy(tmp_path / "x")
    lines = list(log.lines)
    lines[-1] = lines[-1][:100]
    write_lines(directory, lines, final_newline=False)
    assert first_bad(directory, log) == (N - 1, "truncated")


def test_entries_after_the_last_checkpoint_are_parsed(log: Log, tmp_path: Path) -> None:
    # Without a checkpoint over the tail, only the strict parse can see a change there.
    directory = log.copy(tmp_path / "x")
    write_notes(directory, log.notes[:-1])  # last checkpoint now at 576
    lines = list(log.lines)
    lines[590] = lines[590].replace(b'"v":1}', b'"v":2}')
    write_lines(directory, lines)
    assert first_bad(directory, log) == (590, "entry_changed")


# ---------------------------------------------------------------- checkpoints


def test_forged_checkpoint(log: Log, tmp_path: Path) -> None:
    directory = log.copy(tmp_path / "x")
    forger = Ed25519PrivateKey.generate()
    notes = list(log.notes)
    body = parse_note(notes[2]).body
    notes[2] = sign_note(body, ORIGIN, forger)
    write_notes(directory, notes)
    size = 3 * EVERY
    assert first_bad(directory, log) == (size - 1, "checkpoint_signature")


def test_checkpoint_verified_with_the_wrong_key(log: Log, tmp_path: Path) -> None:
    other = verifier_key(ORIGIN, Ed25519PrivateKey.generate().public_key())
    report = verify_export(log.copy(tmp_path / "x"), vkey=other)
    assert report.first_bad is not None
    assert (report.first_bad.seq, report.first_bad.reason) == (EVERY - 1, "checkpoint_signature")


def test_forged_checkpoint_beyond_the_log(log: Log, tmp_path: Path) -> None:
    directory = log.copy(tmp_path / "x")
    forger = Ed25519PrivateKey.generate()
    bogus = sign_note(Checkpoint(ORIGIN, N + 50, bytes(32)).body(), ORIGIN, forger)
    write_notes(directory, [*log.notes, bogus])
    assert first_bad(directory, log) == (N, "checkpoint_signature")


def test_missing_cosignature(log: Log, tmp_path: Path) -> None:
    directory = log.copy(tmp_path / "x")
    notes = list(log.notes)
    note = parse_note(notes[-1])
    assert len(note.signatures) == 2
    notes[-1] = note.body + b"\n" + note.signatures[0].line().encode()
    write_notes(directory, notes)
    assert verify_export(directory, vkey=log.vkey).ok  # no witnesses asked for
    assert first_bad(directory, log, witnesses=[log.witness_vkey]) == (N - 1, "cosignature_invalid")


def test_corrupted_cosignature(log: Log, tmp_path: Path) -> None:
    directory = log.copy(tmp_path / "x")
    notes = list(log.notes)
    note = parse_note(notes[-1])
    witness_sig = note.signatures[1]
    bad = type(witness_sig)(witness_sig.name, witness_sig.key_id, flip(witness_sig.sig, 20))
    notes[-1] = note.body + b"\n" + note.signatures[0].line().encode() + bad.line().encode()
    write_notes(directory, notes)
    assert first_bad(directory, log, witnesses=[log.witness_vkey]) == (N - 1, "cosignature_invalid")


def test_prev_mismatch_when_a_broken_link_was_signed(log: Log, tmp_path: Path) -> None:
    # A buggy or dishonest node signed entries whose link is wrong: bytes are as signed.
    lines = list(log.lines)
    obj = json.loads(lines[300])
    obj["prev"] = b64u_encode(bytes(range(32)))
    lines[300] = parse_entry_bytes(obj)
    lines = rechain(lines, 301)
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    write_notes(directory, sign_all(lines, log.key, sizes()))
    assert first_bad(directory, log) == (300, "prev_mismatch")


def test_consistent_rewrite_is_a_root_mismatch(log: Log, tmp_path: Path) -> None:
    # The forger changed entry 300 and fixed every later link, but cannot re-sign.
    lines = list(log.lines)
    obj = json.loads(lines[300])
    obj["outcome"] = "ok" if obj["outcome"] != "ok" else "rejected"
    lines[300] = parse_entry_bytes(obj)
    lines = rechain(lines, 301)
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    assert first_bad(directory, log) == (256, "root_mismatch")


# ---------------------------------------------------------------- database


def _db(log: Log, tmp_path: Path) -> Path:
    target = tmp_path / "db" / "audit"
    shutil.copytree(log.data_dir / "audit", target)
    return target / DB_NAME


def _run(path: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


def test_database_changed_entry(log: Log, tmp_path: Path) -> None:
    path = _db(log, tmp_path)
    _run(path, "UPDATE entries SET bytes = replace(bytes, 'license', 'lizense') WHERE seq = 77")
    report = verify_database(path, log.vkey)
    assert report.first_bad is not None
    assert (report.first_bad.seq, report.first_bad.reason) == (77, "entry_changed")


def test_database_deleted_entry(log: Log, tmp_path: Path) -> None:
    path = _db(log, tmp_path)
    _run(path, "DELETE FROM entries WHERE seq = 77")
    report = verify_database(path, log.vkey)
    assert report.first_bad is not None
    assert (report.first_bad.seq, report.first_bad.reason) == (77, "sequence_gap")


def test_setup_errors(tmp_path: Path) -> None:
    with pytest.raises(VerifySetupError):
        verify_export(tmp_path)
    with pytest.raises(VerifySetupError):
        verify_database(tmp_path / "nothing")


# ---------------------------------------------------------------- parallel fast path


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Chunks of 32 entries, and a record of every parallel pass (True if it held)."""
    import gateway.audit.verify as verify_module

    monkeypatch.setattr(verify_module, "_PARALLEL_CHUNK", 32)
    passes: list[bool] = []
    original = verify_module._verify_parallel

    def recorded(*args: Any, **kwargs: Any) -> Any:
        report = original(*args, **kwargs)
        passes.append(report is not None)
        return report

    monkeypatch.setattr(verify_module, "_verify_parallel", recorded)
    return passes


def test_parallel_pass_agrees_with_the_sequential_one(
    log: Log, tmp_path: Path, small_chunks: list[bool]
) -> None:
    directory = log.copy(tmp_path / "x")
    sequential = verify_export(directory, vkey=log.vkey, workers=1)
    assert small_chunks == []
    parallel = verify_export(directory, vkey=log.vkey, workers=2)
    assert parallel == sequential and parallel.ok
    assert verify_database(log.data_dir, log.vkey, workers=2) == sequential
    assert small_chunks == [True, True]
    # A log whose size is a whole number of chunks, with checkpoints on chunk ends.
    write_lines(directory, log.lines[:512])
    write_notes(directory, log.notes[:8])
    assert verify_export(directory, vkey=log.vkey, workers=2) == verify_export(
        directory, vkey=log.vkey, workers=1
    )


@pytest.mark.parametrize("k", [0, 32, 599])
def test_parallel_pass_hands_tampering_to_the_careful_pass(
    log: Log, tmp_path: Path, k: int, small_chunks: list[bool]
) -> None:
    lines = list(log.lines)
    lines[k] = flip(lines[k], field_position(lines[k], b"event"))
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    assert first_bad(directory, log, workers=2) == (k, "entry_changed")
    path = _db(log, tmp_path)
    _run(path, f"DELETE FROM entries WHERE seq = {k}")
    report = verify_database(path, log.vkey, workers=2)
    assert report.first_bad is not None
    gone = "truncated" if k == N - 1 else "sequence_gap"
    assert (report.first_bad.seq, report.first_bad.reason) == (k, gone)
    assert small_chunks and not any(small_chunks)  # trouble is handed to the careful pass
