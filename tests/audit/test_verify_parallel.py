"""The parallel fast path never changes a verdict: with and without workers, same report.

``verify_export`` first runs worker processes over aligned chunks, planned from the
``seq`` the entries carry and the sizes the checkpoint notes claim, and verifies the
notes while the workers scan (``gateway.audit.verify_scan``). Whatever the damage,
the report must be the one the sequential pass gives, and damage that only the
per-entry checks can see (the roots were re-signed over it) must make the parallel
pass give up rather than accept. Chunks of 32 entries make a 600-entry log long
enough for the workers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gateway.audit.verify as verify_module
import gateway.audit.verify_scan as verify_scan
from gateway.audit.note import Checkpoint, sign_note
from gateway.audit.verify import VerifyReport, verify_export
from gateway.audit.verify_scan import file_batches, scan_batches
from gateway.encoding import b64u_encode

from .test_verify_tamper import (
    EVERY,
    ORIGIN,
    Log,
    N,
    flip,
    parse_entry_bytes,
    rechain,
    sign_all,
    sizes,
    write_lines,
    write_notes,
)

CHUNK = 32


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return Log(tmp_path_factory.mktemp("audit-log-parallel"))


@pytest.fixture(params=["whole chunks", "tiny blocks"])
def passes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Chunks of 32 entries, and a record of every parallel pass (True if it held).

    With "tiny blocks" a worker reads 700 bytes at a time, so lines straddle blocks
    and a chunk's prev values are compared block by block.
    """
    monkeypatch.setattr(verify_module, "_PARALLEL_CHUNK", CHUNK)
    if request.param == "tiny blocks":
        monkeypatch.setattr(verify_scan, "BLOCK_BYTES", 700)
    held: list[bool] = []
    original = verify_module._verify_parallel

    def recorded(*args: Any, **kwargs: Any) -> Any:
        report = original(*args, **kwargs)
        held.append(report is not None)
        return report

    monkeypatch.setattr(verify_module, "_verify_parallel", recorded)
    return held


def both(directory: Path, log: Log, **kwargs: Any) -> VerifyReport:
    """Verify with two workers and without; the reports must be identical."""
    parallel = verify_export(directory, vkey=log.vkey, workers=2, **kwargs)
    sequential = verify_export(directory, vkey=log.vkey, workers=1, **kwargs)
    assert parallel == sequential
    return parallel


def edit(log: Log, tmp_path: Path, change: Callable[[list[bytes]], list[bytes]]) -> Path:
    directory = log.copy(tmp_path / "x")
    write_lines(directory, change(list(log.lines)))
    return directory


# ---------------------------------------------------------------- intact


def test_intact_log_holds_in_parallel(log: Log, tmp_path: Path, passes: list[bool]) -> None:
    directory = log.copy(tmp_path / "x")
    report = both(directory, log, witnesses=[log.witness_vkey])
    assert report.ok and report.entries == N and report.checkpoints == len(log.notes)
    assert both(directory, log, strict=True).ok
    assert passes == [True, True]  # one parallel pass per verify_export with workers=2


# ---------------------------------------------------------------- unsigned damage


def _delete(k: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: lines[:k] + lines[k + 1 :]


def _swap(a: int, b: int) -> Callable[[list[bytes]], list[bytes]]:
    def change(lines: list[bytes]) -> list[bytes]:
        lines[a], lines[b] = lines[b], lines[a]
        return lines

    return change


def _replace(k: int, old: bytes, new: bytes) -> Callable[[list[bytes]], list[bytes]]:
    def change(lines: list[bytes]) -> list[bytes]:
        assert old in lines[k]
        lines[k] = lines[k].replace(old, new, 1)
        return lines

    return change


DAMAGE: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "delete first": _delete(0),
    "delete at a chunk start": _delete(64),
    "delete last": _delete(N - 1),
    "swap across chunks": _swap(31, 32),
    "swap far": _swap(100, 400),
    "duplicate": lambda lines: [*lines[:201], lines[200], *lines[201:]],
    "blank line": lambda lines: [*lines[:96], b"", *lines[96:]],
    "junk line appended": lambda lines: [*lines, b'{"v":1}'],
    "entry appended again": lambda lines: [*lines, lines[-1]],
    "truncated to one chunk": lambda lines: lines[:CHUNK],
    "carriage return": lambda lines: [*lines[:50], lines[50] + b"\r", *lines[51:]],
    "seq made larger": _replace(70, b'"seq":70,', b'"seq":71,'),
    "seq with a leading zero": _replace(70, b'"seq":70,', b'"seq":070,'),
    "no closing brace": _replace(33, b'"v":1}', b'"v":1 '),
    "prev key renamed": _replace(40, b',"prev":"', b',"prew":"'),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damage_gets_the_sequential_verdict(
    log: Log, tmp_path: Path, passes: list[bool], name: str
) -> None:
    report = both(edit(log, tmp_path, DAMAGE[name]), log)
    assert not report.ok
    assert passes in ([False], [])  # tried and gave up, or not tried at all


def test_cut_file_gets_the_sequential_verdict(log: Log, tmp_path: Path, passes: list[bool]) -> None:
    directory = log.copy(tmp_path / "x")
    lines = list(log.lines)
    lines[-1] = lines[-1][:100]
    write_lines(directory, lines, final_newline=False)
    report = both(directory, log)
    assert report.first_bad is not None and report.first_bad.reason == "truncated"


@pytest.mark.parametrize("damage", ["forged", "beyond the log", "leading zero", "dropped"])
def test_checkpoint_damage_gets_the_sequential_verdict(
    log: Log, tmp_path: Path, passes: list[bool], damage: str
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    directory = log.copy(tmp_path / "x")
    notes = list(log.notes)
    if damage == "forged":
        notes[3] = sign_note(Checkpoint(ORIGIN, 4 * EVERY, bytes(32)).body(), ORIGIN, log.key)
    elif damage == "beyond the log":
        forger = Ed25519PrivateKey.generate()
        notes.append(sign_note(Checkpoint(ORIGIN, N + 50, bytes(32)).body(), ORIGIN, forger))
    elif damage == "leading zero":  # the claimed size reads 64, the strict parse refuses it
        notes[0] = notes[0].replace(b"\n64\n", b"\n064\n", 1)
    else:
        del notes[-1]  # the tail is no longer covered: it is parsed strictly
        lines = list(log.lines)
        lines[590] = lines[590].replace(b'"v":1}', b'"v":2}')
        write_lines(directory, lines)
    write_notes(directory, notes)
    report = both(directory, log)
    assert not report.ok
    assert passes in ([False], [])


# ---------------------------------------------------------------- signed damage


def _signed(log: Log, tmp_path: Path, lines: list[bytes]) -> Path:
    """An export whose checkpoints were re-signed over ``lines``: roots all match."""
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    write_notes(directory, sign_all(lines, log.key, sizes()))
    return directory


def _with(line: bytes, **fields: Any) -> bytes:
    obj = json.loads(line)
    obj.update(fields)
    return parse_entry_bytes(obj)


def test_signed_broken_link(log: Log, tmp_path: Path, passes: list[bool]) -> None:
    lines = list(log.lines)
    lines[300] = _with(lines[300], prev=b64u_encode(bytes(range(32))))
    report = both(_signed(log, tmp_path, rechain(lines, 301)), log)
    assert report.first_bad is not None
    assert (report.first_bad.seq, report.first_bad.reason) == (300, "prev_mismatch")
    assert passes == [False]


def test_signed_wrong_seq(log: Log, tmp_path: Path, passes: list[bool]) -> None:
    lines = list(log.lines)
    lines[77] = _with(lines[77], seq=78)
    report = both(_signed(log, tmp_path, rechain(lines, 78)), log)
    assert report.first_bad is not None
    assert (report.first_bad.seq, report.first_bad.reason) == (77, "entry_changed")
    assert passes == [False]


def test_decoy_prev_inside_meta(log: Log, tmp_path: Path, passes: list[bool]) -> None:
    # The right prev value stands in meta under the key "prev"; the top-level one is
    # wrong. Only the last ``,"prev":"`` of a line is its prev.
    lines = list(log.lines)
    right = json.loads(lines[150])["prev"]
    meta = {**json.loads(lines[150])["meta"], "prev": right, "zz": 1}
    lines[150] = _with(lines[150], meta=meta, prev=b64u_encode(bytes(32)))
    assert lines[150].count(b',"prev":"') == 2
    report = both(_signed(log, tmp_path, rechain(lines, 151)), log)
    assert not report.ok
    assert passes == [False]


def test_decoy_seq_before_prev(log: Log, tmp_path: Path, passes: list[bool]) -> None:
    # ``,"seq":150,"subject":`` is in meta, before prev; the real seq is wrong.
    lines = list(log.lines)
    meta = {k: v for k, v in json.loads(lines[150])["meta"].items() if k != "status"}
    meta.update(seq=150, subject=None)  # nothing may sort between the two
    lines[150] = _with(lines[150], meta=meta, seq=9150)
    assert b',"seq":150,"subject":' in lines[150]
    report = both(_signed(log, tmp_path, rechain(lines, 151)), log)
    assert report.first_bad is not None and report.first_bad.seq == 150
    assert passes == [False]


# ---------------------------------------------------------------- random damage


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_damage_gets_the_sequential_verdict(
    log: Log, tmp_path: Path, passes: list[bool], data: st.DataObject
) -> None:
    lines = list(log.lines)
    kind = data.draw(st.sampled_from(["flip", "delete", "move", "resign flip"]), label="kind")
    k = data.draw(st.integers(0, N - 1), label="entry")
    if kind in ("flip", "resign flip"):
        position = data.draw(st.integers(0, len(lines[k]) - 1), label="position")
        lines[k] = flip(lines[k], position, data.draw(st.integers(1, 255), label="xor"))
    elif kind == "delete":
        del lines[k]
    else:
        lines.insert(data.draw(st.integers(0, N - 1), label="to"), lines.pop(k))
    directory = log.copy(tmp_path / "x")
    write_lines(directory, lines)
    if kind == "resign flip":  # the roots vouch for the flipped bytes; the links do not
        write_notes(directory, sign_all(lines, log.key, sizes()))
    report = both(directory, log)
    if kind != "resign flip":  # a re-signed change to the last entry is what was signed
        assert report.ok == (lines == log.lines)
    assert passes and passes[-1] == report.ok  # the workers ran; they held iff all is well


# ---------------------------------------------------------------- the pieces


def test_probed_offsets_are_the_counted_ones(log: Log) -> None:
    entries = log.export_dir / "entries.jsonl"
    for every in (1, 2, 32, 100, 256, 599):
        assert verify_module._probe_offsets(entries, every) == verify_module._line_offsets(
            entries, every
        )


def test_probe_gives_up_on_lying_seqs(log: Log, tmp_path: Path) -> None:
    directory = edit(log, tmp_path, _replace(N - 1, b'"seq":599,', b'"seq":99999999,'))
    assert verify_module._probe_offsets(directory / "entries.jsonl", CHUNK) is None
    directory = edit(log, tmp_path, _replace(320, b'"seq":320,', b'"seq":9,'))
    planned = verify_module._probe_offsets(directory / "entries.jsonl", CHUNK)
    counted = verify_module._line_offsets(directory / "entries.jsonl", CHUNK)
    assert planned is None or planned[1] == counted[1]  # type: ignore[index]


def test_chunk_scan_matches_the_tree(log: Log) -> None:
    from gateway.audit.merkle import CompactRange, leaf_hash

    entries = log.export_dir / "entries.jsonl"
    offsets, _ = verify_module._line_offsets(entries, 64)  # type: ignore[misc]
    start, end = offsets[2], offsets[3]
    scan = scan_batches(file_batches(str(entries), start, end), 128, [130, 150, 192], N, 64)
    assert not scan.bad and scan.count == 64 and scan.first == 128
    assert scan.first_prev == b64u_encode(leaf_hash(log.lines[127])).encode()
    assert scan.last_leaf == leaf_hash(log.lines[191])
    for size in (130, 150, 192):
        tree = CompactRange()
        tree.extend(leaf_hash(line) for line in log.lines[128:size])
        assert scan.peaks_at[size] == tree.peaks
    whole = CompactRange()
    whole.extend(leaf_hash(line) for line in log.lines[128:192])
    assert scan.peaks == whole.peaks
    # More lines than the chunk may hold: bad.
    assert scan_batches(file_batches(str(entries), start, end), 128, [], N, 63).bad


def test_plain_notes_read_as_the_general_parser_does(log: Log) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.audit.note import NoteError, cosign, parse_note, verify_checkpoint

    checker, _ = verify_module._verifiers(log.vkey, [])
    plain = verify_module._PlainNotes(checker)

    def general(note: bytes) -> tuple[int, bytes] | None:
        try:
            checkpoint, _ = verify_checkpoint(note, checker, origin=checker.name)
        except NoteError:
            return None
        return checkpoint.size, checkpoint.root

    root = bytes(range(32))
    other = Ed25519PrivateKey.generate()
    body = Checkpoint(ORIGIN, 64, root).body()
    signed = sign_note(body, ORIGIN, log.key)
    witness = cosign(body, "tongban/cn-330800/witness", other, 1_795_910_400)
    fast = {
        "plain": signed,
        "size 0": sign_note(Checkpoint(ORIGIN, 0, root).body(), ORIGIN, log.key),
        "largest size": sign_note(Checkpoint(ORIGIN, 2**64 - 1, root).body(), ORIGIN, log.key),
    }
    slow = {
        "extension line": sign_note(Checkpoint(ORIGIN, 64, root, ("x",)).body(), ORIGIN, log.key),
        "cosigned": signed + witness.encode(),
        "another key": sign_note(body, ORIGIN, other),
        "another origin": sign_note(
            Checkpoint("tongban/cn-330800/audit", 64, root).body(), ORIGIN, log.key
        ),
        "leading zero": signed.replace(b"\n64\n", b"\n064\n", 1),
        "no final newline": signed[:-1],
        "signature twice": signed + signed[len(body) + 1 :],
    }
    for name, note in fast.items():
        assert plain.read(note) == general(note) is not None, name
    for name, note in slow.items():
        assert plain.read(note) is None, name
    for note in log.notes:  # the real ones: the last carries a cosignature
        assert plain.read(note) in (None, general(note))
    assert len(parse_note(log.notes[-1]).signatures) == 2 and plain.read(log.notes[-1]) is None
    # Any one byte changed: the fast reader declines, or agrees with the general one.
    for position in range(len(signed)):
        for mask in (0x01, 0x20, 0x80):
            changed = flip(signed, position, mask)
            assert plain.read(changed) in (None, general(changed))
