"""The auditor's verifier (审计核验): stream the log, find the first bad entry (SPEC 6).

``verify_export`` (an export directory) and ``verify_database`` (a node's database)
read the entries once, in order, holding only a Merkle accumulator, the expected next
``prev`` and the checkpoints' sizes and roots, so memory does not grow with the log.

Fast path, per entry: in RFC 8785 form ``prev`` and ``seq`` are top-level keys after
``meta`` with only fixed-shape values behind them, so the *last* ``,"prev":"`` is the
top-level one; the entry passes if the previous leaf's base64url follows it, and
``,"seq":<expected>,"subject":`` comes after it. Then the leaf is hashed into the tree
and compared with each checkpoint as its size is reached. Entries no signed checkpoint
covers are also parsed strictly (nothing else vouches for them); ``strict=True`` parses
every entry. Anything unexpected leaves the fast path for the careful one below,
which names the first bad entry. A long log is first run through the fast path by
worker processes on aligned chunks of 16,384 entries (each a perfect Merkle subtree,
so chunk results combine exactly; ``gateway.audit.verify_scan``); if any check fails
there, the sequential pass runs from the start and gives the answer. For an export
the parent neither counts lines nor checks signatures before the workers start: it
finds each chunk's first line by the ``seq`` entries carry (``_probe_offsets``) and
plans the chunks from the sizes the notes claim, then verifies the notes while the
workers scan; the chunks' results are used only if every line had the ``seq`` of its
position, the chunks tile the file, and the verified checkpoints are the claimed ones.

Reason codes (stable; ``first_bad.reason``)::

    entry_changed         the entry's bytes are not the ones the log signed or linked to
    prev_mismatch         the bytes are as signed, but ``prev`` is not the previous leaf
                          (the node wrote a broken link)
    sequence_gap          entries are missing: the next entry has a later ``seq``
    out_of_order          the entry at this position carries another ``seq`` that occurs
                          elsewhere (entries moved or duplicated)
    root_mismatch         the chain is intact but does not give the signed root at a
                          checkpoint: history from ``seq`` on was rewritten consistently
    checkpoint_signature  a checkpoint is malformed, of another log, or not signed by the
                          log key; ``seq`` is the last entry it claims to cover
    cosignature_invalid   a witness cosignature does not verify, or the latest checkpoint
                          lacks the cosignatures required; ``seq`` as above
    truncated             the log ends below the size of a signed checkpoint; ``seq`` is
                          the first missing entry

How a changed entry is attributed (the SPEC: a change in entry k names k, not k+1).
A change in entry k shows up as entry k+1's ``prev`` no longer matching leaf(k), or,
for the last entry a checkpoint covers, as a root mismatch. Entry k+1's ``prev`` is
a *claim* of what leaf(k) was, so on a broken link at i (``prev(i) != leaf(i-1)``) two
stories compete: (A) entry i-1 changed and ``prev(i)`` is its true leaf, (B) entry i
changed (its ``prev`` field). The verifier decides with evidence, strongest first:

1. a checkpoint already verified at size >= i proves entry i-1 as it is, so (B): it
   is ``prev_mismatch`` if a later checkpoint's root is reproduced from the entries as
   they are (bytes as signed, link wrong), else ``entry_changed`` at i;
2. the first checkpoint covering i-1: re-hash with leaf(i-1) replaced by ``prev(i)``;
   reproducing the signed root proves (A), ``entry_changed`` at i-1. Reproducing it
   with the leaves as they are means ``prev_mismatch`` at i. If neither does (more
   than one entry changed), fall through to the chain;
3. the chain: if entry i+1 links to entry i as it is, i is vouched for by its
   successor and i-1 changed (A); if that link is broken too, entry i changed (B);
   with no evidence either way (last entry, no checkpoint), (A), as most of an
   entry's bytes lie outside its ``prev``.

A wrong ``seq`` with a correct ``prev`` is a changed entry. A later ``seq`` with a
broken link is a gap, or ``out_of_order`` if the missing ``seq`` turns up further on
(swapped entries name the first displaced position); an earlier ``seq`` is
``out_of_order`` (moved or duplicated).

A root mismatch at checkpoint size s with an intact chain is attributed to entry s-1
(the one entry no later ``prev`` vouches for) when the next entry's ``prev`` restores
the signed root or there is no next entry; otherwise it is ``root_mismatch`` at the
first entry after the last verified checkpoint. Checkpoint and cosignature faults are
reported when the stream reaches their size, so ``first_bad`` is always the earliest
problem in log order. Re-hashing restarts from the last verified checkpoint, only on
failure, and keeps memory flat. Every test of this is in
``tests/audit/test_verify_tamper.py`` (one flipped byte anywhere names its entry).
"""

from __future__ import annotations

import base64
import binascii
import collections
import concurrent.futures
import hashlib
import itertools
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gateway.audit.entry import ZERO_PREV, EntryInvalid, parse_entry
from gateway.audit.export import (
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    VKEY_FILE,
    Progress,
    connect_readonly,
    database_path,
    read_checkpoints,
)
from gateway.audit.merkle import EMPTY_ROOT, CompactRange
from gateway.audit.note import (
    SIG_COSIGNATURE_V1,
    NoteError,
    Verifier,
    parse_checkpoint_body,
    parse_note,
    parse_verifier_key,
    verify_checkpoint,
    verify_cosignature,
)
from gateway.audit.store import as_blob
from gateway.audit.verify_scan import ChunkScan, file_batches, scan_batches
from gateway.errors import GatewayError, NotFound

__all__ = [
    "REASONS",
    "FirstBad",
    "VerifyReport",
    "VerifySetupError",
    "verify_database",
    "verify_export",
    "verify_lines",
]

REASONS: Final[Mapping[str, str]] = {
    "entry_changed": "entry bytes changed",
    "prev_mismatch": "prev link broken",
    "sequence_gap": "sequence gap",
    "out_of_order": "entries moved or duplicated",
    "root_mismatch": "checkpoint root mismatch",
    "checkpoint_signature": "checkpoint signature invalid",
    "cosignature_invalid": "witness cosignature invalid or missing",
    "truncated": "truncated below a signed size",
}
"""Every ``first_bad.reason`` code with a short English label."""

_ZERO: Final = ZERO_PREV.encode("ascii")
_PROGRESS_EVERY: Final = 1 << 16
_CHUNK: Final = 1024
_PARALLEL_CHUNK: Final = 1 << 14
"""Lines per worker task: a power of two, so every chunk is a perfect Merkle subtree."""
_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_QUOTED: Final = bytes.maketrans(b"+/=", b'-_"')
"""base64 of a 32-byte leaf ends in one ``=``: mapped to ``"`` it is the prev value and
its closing quote, ready to compare with one ``startswith``."""


class VerifySetupError(GatewayError):
    """The verifier could not start: a missing file or an unusable key (not a log fault)."""

    code = "validation_failed"
    status = 400
    title = "Cannot verify"


@dataclass(frozen=True)
class FirstBad:
    """The first bad entry: its ``seq``, a reason code from ``REASONS``, and plain words."""

    seq: int
    reason: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a verification; ``to_json`` is the ``--json`` shape of SPEC 6.

    ``entries`` counts the entries verified (all of them when ``ok``), ``root`` is the
    RFC 9162 root over those, ``checkpoints`` the checkpoints whose signature and root
    were verified.
    """

    ok: bool
    entries: int
    root: bytes
    checkpoints: int
    first_bad: FirstBad | None

    def to_json(self) -> dict[str, Any]:
        """``{"ok", "entries", "root", "checkpoints", "first_bad"}``; root in base64 as in
        checkpoint notes."""
        bad = self.first_bad
        return {
            "ok": self.ok,
            "entries": self.entries,
            "root": base64.b64encode(self.root).decode("ascii"),
            "checkpoints": self.checkpoints,
            "first_bad": None
            if bad is None
            else {"seq": bad.seq, "reason": bad.reason, "detail": bad.detail},
        }


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class _Cp:
    """A checkpoint as the verifier keeps it: size, root, and what is wrong with it."""

    size: int
    root: bytes
    problem: tuple[str, str] | None = None
    cosigned: int = 0

    @property
    def signed(self) -> bool:
        return self.problem is None or self.problem[0] != "checkpoint_signature"


def _load_checkpoints(
    notes: Iterable[bytes],
    log: Verifier,
    witnesses: Sequence[Verifier],
    min_cosignatures: int,
) -> list[_Cp]:
    """Check every note's signature (and cosignatures); keep only size, root and verdict."""
    known = {(w.name, w.key_id): w for w in witnesses}
    plain = None if known else _PlainNotes(log)
    out: list[_Cp] = []
    for number, note in enumerate(notes, 1):
        if plain is not None and (read := plain.read(note)) is not None:
            out.append(_Cp(*read))
            continue
        try:
            checkpoint, _ = verify_checkpoint(note, log, origin=log.name)
        except NoteError as exc:
            try:
                claimed = parse_checkpoint_body(parse_note(note).body)
                size, root = claimed.size, claimed.root
            except NoteError:
                size, root = 0, EMPTY_ROOT
            detail = f"checkpoint #{number} (size {size}) is not valid: {exc}"
            out.append(_Cp(size, root, ("checkpoint_signature", detail)))
            continue
        out.append(_cosignatures(note, checkpoint.size, checkpoint.root, known))
    out.sort(key=lambda c: c.size)
    if known:
        # The latest checkpoint must carry the required cosignatures; earlier ones may
        # lag (a witness was down), but every cosignature present must verify.
        latest = max(
            (i for i, c in enumerate(out) if c.signed), key=lambda i: out[i].size, default=None
        )
        if latest is not None:
            cp = out[latest]
            if cp.problem is None and cp.cosigned < min_cosignatures:
                detail = (
                    f"the latest checkpoint (size {cp.size}) has {cp.cosigned} valid witness "
                    f"cosignatures, {min_cosignatures} required"
                )
                out[latest] = _Cp(cp.size, cp.root, ("cosignature_invalid", detail))
    return out


_MAX_TREE_SIZE: Final = 2**64 - 1
_EM_DASH: Final = "\u2014 ".encode()


class _PlainNotes:
    """Reads a note in exactly the form the log itself signs, without the general parser.

    Parsing is a fifth of what 3,907 notes cost (0.2 s of 0.9 s; the rest is Ed25519),
    and it runs beside the workers, so it slows them. A note here is
    ``<origin>\\n<size>\\n<root>\\n\\n— <origin> <base64(key ID || signature)>\\n``: the
    origin is the log's name, the size a canonical decimal, root and signature canonical
    base64, the key ID the log key's, and the signature verifies. ``verify_checkpoint``
    accepts every such note, with the same size and root; anything else (another form,
    extensions, cosignatures, a signature that fails) returns ``None`` and goes to it,
    which gives the verdict and its words.
    """

    def __init__(self, log: Verifier) -> None:
        origin = log.name.encode("utf-8")
        self.log = log
        self.head = origin + b"\n"
        self.sig_head = b"\n\n" + _EM_DASH + origin + b" "

    def read(self, note: bytes) -> tuple[int, bytes] | None:
        """``(size, root)`` of a plain note whose signature verifies, else ``None``."""
        start = len(self.head)
        size_end = note.find(b"\n", start)
        if size_end < 0 or not note.startswith(self.head) or not note.endswith(b"\n"):
            return None
        digits = note[start:size_end]
        if not digits.isdigit() or len(digits) > 20 or (digits[:1] == b"0" and len(digits) > 1):
            return None  # bytes.isdigit: ASCII digits only
        body_end = size_end + 45  # the newline after the 44 base64 characters of the root
        if int(digits) > _MAX_TREE_SIZE or not note.startswith(self.sig_head, body_end):
            return None
        root = _canonical_b64(note[size_end + 1 : body_end])
        sig = _canonical_b64(note[body_end + len(self.sig_head) : -1])
        if root is None or len(root) != 32 or sig is None or len(sig) != 68:
            return None
        if sig[:4] != self.log.key_id:
            return None
        try:
            self.log.verify(note[: body_end + 1], sig[4:])
        except NoteError:
            return None
        return int(digits), root


def _canonical_b64(text: bytes) -> bytes | None:
    """Standard padded base64 with one encoding per value, as ``gateway.audit.note`` reads it."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw) == text else None


def _cosignatures(
    note: bytes, size: int, root: bytes, known: Mapping[tuple[str, bytes], Verifier]
) -> _Cp:
    if not known:
        return _Cp(size, root)
    parsed = parse_note(note)
    cosigned: set[tuple[str, bytes]] = set()
    for sig in parsed.signatures:
        witness = known.get((sig.name, sig.key_id))
        if witness is None:
            continue
        try:
            verify_cosignature(parsed.body, sig, witness)
        except NoteError as exc:
            detail = f"checkpoint at size {size}: cosignature of {sig.name} does not verify ({exc})"
            return _Cp(size, root, ("cosignature_invalid", detail))
        cosigned.add((sig.name, sig.key_id))
    return _Cp(size, root, None, len(cosigned))


# ---------------------------------------------------------------- entry sources


@dataclass(frozen=True)
class _Source:
    """Where entries come from: ``open(skip)`` yields entry bytes from line ``skip`` on."""

    open: Callable[[int], Iterator[bytes]]
    total: int | None
    unterminated: bool = False  # the last line has no newline (a cut file)


def _file_source(path: Path, count: bool) -> _Source:
    def open_lines(skip: int) -> Iterator[bytes]:
        with path.open("rb", buffering=1 << 20) as f:
            for line in itertools.islice(f, skip, None):
                yield line[:-1] if line[-1:] == b"\n" else line

    total = None
    size = path.stat().st_size
    unterminated = False
    if size:
        with path.open("rb") as f:
            f.seek(-1, 2)
            unterminated = f.read(1) != b"\n"
            if count:
                f.seek(0)
                total = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
                total += unterminated
    else:
        total = 0
    return _Source(open_lines, total, unterminated)


def _db_source(conn: sqlite3.Connection) -> _Source:
    def open_lines(skip: int) -> Iterator[bytes]:
        cursor = conn.execute("SELECT bytes FROM entries ORDER BY seq LIMIT -1 OFFSET ?", (skip,))
        for (data,) in cursor:
            yield as_blob(data)

    row = conn.execute("SELECT count(*) FROM entries").fetchone()
    return _Source(open_lines, int(row[0]))


# ---------------------------------------------------------------- the verifier


def _b64(leaf: bytes) -> bytes:
    return binascii.b2a_base64(leaf, newline=False).translate(_URLSAFE)[:43]


def _decode_prev(prev: bytes) -> bytes | None:
    try:
        raw = base64.urlsafe_b64decode(prev + b"=")
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 and _b64(raw) == prev else None


def _fields(line: bytes) -> tuple[int, bytes] | None:
    """``(seq, prev)`` of a canonical entry by position, or ``None`` if it has no such shape."""
    p = line.rfind(b',"prev":"')
    if p < 0 or line[-1:] != b"}" or line[p + 52 : p + 53] != b'"':
        return None
    q = line.rfind(b',"seq":', p)
    if q < 0:
        return None
    end = line.find(b",", q + 7)
    digits = line[q + 7 : end]
    if end < 0 or not digits.isdigit() or (digits[:1] == b"0" and len(digits) > 1):
        return None
    return int(digits), line[p + 9 : p + 52]


class _Run:
    """One verification pass over a source (see module docs for the rules)."""

    def __init__(
        self, source: _Source, cps: list[_Cp], strict: bool, progress: Progress | None
    ) -> None:
        self.source = source
        self.cps = cps
        self.strict = strict
        self.progress = progress
        self.verified_cps = 0
        # The last checkpoint that matched: (size, tree at that size). Re-hashing for a
        # diagnosis starts here.
        self.good: tuple[int, CompactRange] = (0, CompactRange())

    # -- result helpers

    def _report(self, tree: CompactRange, entries: int, bad: FirstBad | None) -> VerifyReport:
        return VerifyReport(bad is None, entries, tree.root(), self.verified_cps, bad)

    def _covered(self, size: int) -> _Cp | None:
        """The first signature-valid checkpoint whose size is at least ``size``."""
        for cp in self.cps:
            if cp.size >= size and cp.signed:
                return cp
        return None

    def _roots(self, upto: int, substitutions: Sequence[Mapping[int, bytes]]) -> list[bytes | None]:
        """Roots at ``upto`` of the entries as they are, with some leaves replaced."""
        start, base = self.good
        trees = [base.copy() for _ in substitutions]
        pos = start
        for line in self.source.open(start):
            if pos >= upto:
                break
            leaf = hashlib.sha256(b"\x00" + line).digest()
            for tree, subst in zip(trees, substitutions, strict=True):
                tree.extend([subst.get(pos, leaf)])
            pos += 1
        if pos < upto:
            return [None for _ in substitutions]
        return [t.root() for t in trees]

    # -- the pass

    def run(self) -> VerifyReport:
        cps = self.cps
        parse_from = _parse_from(cps, self.strict)
        tree = CompactRange()
        extend = tree.extend
        chunk: list[bytes] = []
        sha = hashlib.sha256
        b2a = binascii.b2a_base64
        ci = 0
        expected = 0
        quoted = _ZERO + b'"'  # the expected prev value and its closing quote
        # Checkpoints of size 0 (the empty tree) are checked before any entry.
        while ci < len(cps) and cps[ci].size == 0:
            bad = self._check_cp(cps[ci], tree, 0, None)
            if bad is not None:
                return self._report(tree, 0, bad)
            ci += 1
        next_size = cps[ci].size if ci < len(cps) else -1
        lines = self.source.open(0)
        total = self.source.total
        progress = self.progress
        for line in lines:
            # Fast path: the canonical tail must hold ``"prev":"<previous leaf>"`` and,
            # after it, ``"seq":<expected>,"subject":``. Anything else, and every entry
            # no checkpoint covers, goes to the careful path.
            p = line.rfind(b',"prev":"')
            if (
                p < 0
                or not line.startswith(quoted, p + 9)
                or line.find(b',"seq":%d,"subject":' % expected, p + 53) < 0
                or line[-1:] != b"}"
                or expected >= parse_from
            ):
                bad = self._careful(line, expected, quoted[:-1], parse_from, lines)
                if bad is not None:
                    extend(chunk)
                    return self._report(tree, expected, bad)
            leaf = sha(b"\x00" + line).digest()
            chunk.append(leaf)
            quoted = b2a(leaf, newline=False).translate(_QUOTED)
            expected += 1
            if expected == next_size:
                extend(chunk)
                chunk.clear()
                while ci < len(cps) and cps[ci].size == expected:
                    bad = self._check_cp(cps[ci], tree, expected, lines)
                    if bad is not None:
                        return self._report(tree, expected, bad)
                    ci += 1
                next_size = cps[ci].size if ci < len(cps) else -1
            elif len(chunk) >= _CHUNK:
                extend(chunk)
                chunk.clear()
                if progress is not None and expected % _PROGRESS_EVERY < _CHUNK:
                    progress(expected, total)
        extend(chunk)
        if progress is not None:
            progress(expected, total)
        if ci < len(cps):
            cp = cps[ci]
            if not cp.signed and cp.problem is not None:
                return self._report(tree, expected, FirstBad(min(cp.size, expected), *cp.problem))
            return self._report(
                tree,
                expected,
                FirstBad(
                    expected,
                    "truncated",
                    f"the log ends after {expected} entries but a checkpoint is signed at "
                    f"size {cp.size}: entries {expected} to {cp.size - 1} are missing",
                ),
            )
        return self._report(tree, expected, None)

    def _careful(
        self, line: bytes, expected: int, prev_text: bytes, parse_from: int, rest: Iterator[bytes]
    ) -> FirstBad | None:
        """The slow path for one entry: strict parse if needed, then seq and prev."""
        fields = _fields(line)
        if fields is None or expected >= parse_from:
            bad = self._parse_problem(line, expected, rest)
            if bad is not None:
                return bad
            if fields is None:
                return FirstBad(expected, "entry_changed", f"entry {expected} is malformed")
        seq, prev = fields
        if seq != expected or prev != prev_text:
            return self._diagnose_link(expected, seq, prev, prev_text, line, rest)
        return None

    def _parse_problem(self, line: bytes, expected: int, rest: Iterator[bytes]) -> FirstBad | None:
        try:
            parse_entry(line)
        except EntryInvalid as exc:
            last = next(rest, None) is None
            if last and self.source.unterminated and self._covered(expected + 1) is not None:
                return FirstBad(
                    expected,
                    "truncated",
                    f"the log is cut inside entry {expected}, below a signed checkpoint",
                )
            return FirstBad(
                expected, "entry_changed", f"entry {expected} is not valid: {exc.detail}"
            )
        return None

    def _check_cp(
        self, cp: _Cp, tree: CompactRange, size: int, lines: Iterator[bytes] | None
    ) -> FirstBad | None:
        seq = max(size - 1, 0)
        if cp.problem is not None:
            return FirstBad(seq, *cp.problem)
        if tree.root() == cp.root:
            self.verified_cps += 1
            self.good = (size, tree.copy())
            return None
        return self._diagnose_root(cp, size, lines)

    def _diagnose_root(self, cp: _Cp, size: int, lines: Iterator[bytes] | None) -> FirstBad:
        """Chain intact up to ``size - 1`` but the signed root differs (module docs)."""
        last = size - 1
        good_size = self.good[0]
        following = None if lines is None else next(lines, None)
        fields = None if following is None else _fields(following)
        if following is None:
            return FirstBad(
                last,
                "entry_changed",
                f"the checkpoint at size {size} does not match; every earlier entry is "
                f"vouched for by the next one's prev, so entry {last} differs from what was "
                f"signed (or history from entry {good_size} on was rewritten)",
            )
        if fields is not None and fields[0] == size:
            claimed = _decode_prev(fields[1])
            if claimed is not None:
                (alt,) = self._roots(size, [{last: claimed}])
                if alt == cp.root:
                    return FirstBad(
                        last,
                        "entry_changed",
                        f"entry {last} differs from the one signed at size {size}: with the "
                        f"leaf entry {size} links to, the signed root is reproduced",
                    )
        return FirstBad(
            good_size,
            "root_mismatch",
            f"entries {good_size} to {last} do not give the root signed at size {size}, "
            "although they link to each other: history was rewritten",
        )

    def _diagnose_link(
        self,
        i: int,
        seq: int,
        prev: bytes,
        prev_text: bytes,
        line: bytes,
        rest: Iterator[bytes],
    ) -> FirstBad:
        """Entry at position ``i`` has the wrong ``seq`` or ``prev`` (module docs)."""
        if seq != i:
            if prev == prev_text:
                return FirstBad(
                    i, "entry_changed", f"entry {i} links correctly but its seq says {seq}"
                )
            if seq > i:
                for other in rest:
                    found = _fields(other)
                    if found is not None and found[0] == i:
                        return FirstBad(
                            i, "out_of_order", f"entry {seq} stands where entry {i} belongs"
                        )
                return FirstBad(
                    i, "sequence_gap", f"entries {i} to {seq - 1} are missing (next is {seq})"
                )
            return FirstBad(i, "out_of_order", f"entry {seq} appears again at position {i}")
        if i == 0:
            return FirstBad(0, "entry_changed", "entry 0 does not start the chain (prev is not 0)")
        following = next(rest, None)
        succ = None if following is None else _fields(following)
        leaf_text = _b64(hashlib.sha256(b"\x00" + line).digest())
        succ_vouches = succ is not None and succ[0] == i + 1 and succ[1] == leaf_text
        succ_breaks = succ is not None and succ[0] == i + 1 and succ[1] != leaf_text
        this_changed = FirstBad(
            i, "entry_changed", f"entry {i} changed: it does not link to entry {i - 1}"
        )
        before_changed = FirstBad(
            i - 1, "entry_changed", f"entry {i - 1} changed: entry {i} links to another leaf"
        )
        broken_link = FirstBad(
            i, "prev_mismatch", f"entry {i} is as signed, but its prev is not entry {i - 1}'s leaf"
        )
        if self.good[0] >= i:
            # A verified checkpoint proves entry i-1 as it is: entry i is the bad one.
            later = self._covered(i + 1)
            if later is not None and later.problem is None:
                (seen,) = self._roots(later.size, [{}])
                if seen == later.root:
                    return broken_link
            return this_changed
        cover = self._covered(i)
        if cover is not None and cover.problem is None:
            claimed = _decode_prev(prev)
            substitutions: list[Mapping[int, bytes]] = [{}]
            if claimed is not None:
                substitutions.append({i - 1: claimed})
            roots = self._roots(cover.size, substitutions)
            if len(roots) > 1 and roots[1] == cover.root:
                return FirstBad(
                    i - 1,
                    "entry_changed",
                    f"entry {i - 1} differs from the one signed at size {cover.size}: with the "
                    f"leaf entry {i} links to, the signed root is reproduced",
                )
            if roots[0] == cover.root:
                return broken_link
            return before_changed if succ_vouches else this_changed
        if succ_breaks:
            return this_changed
        if succ_vouches:
            return before_changed
        return FirstBad(
            i - 1,
            "entry_changed",
            f"entry {i - 1} changed: entry {i} links to another leaf (no later checkpoint "
            "or link confirms which of the two changed)",
        )


# ---------------------------------------------------------------- the parallel fast path


def _file_chunk(
    path: str, start: int, end: int, first: int, sizes: Sequence[int], parse_from: int, lines: int
) -> ChunkScan:
    """Worker task: the fast path over bytes ``[start, end)`` of ``entries.jsonl``."""
    return scan_batches(file_batches(path, start, end), first, sizes, parse_from, lines)


def _db_chunk(
    path: str, first: int, count: int, sizes: Sequence[int], parse_from: int, lines: int
) -> ChunkScan:
    """Worker task: the fast path over entries ``[first, first + count)`` of a database."""
    conn = connect_readonly(Path(path))
    try:
        rows = conn.execute(
            "SELECT seq, bytes FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq",
            (first, first + count),
        ).fetchall()
    finally:
        conn.close()
    if [r[0] for r in rows] != list(range(first, first + count)):
        return ChunkScan(first, 0, None, None, True, {}, ())
    return scan_batches([[as_blob(r[1]) for r in rows]], first, sizes, parse_from, lines)


def _line_offsets(path: Path, every: int) -> tuple[list[int], int] | None:
    """Byte offsets of lines 0, every, 2*every, ..., the end; and the number of lines.

    Newlines are counted a block at a time in C; only up to each boundary are they
    walked one by one. ``None`` when the file does not end in a newline (a cut file is
    the careful pass's business). This reads the whole file; ``_probe_offsets`` is
    tried first.
    """
    offsets = [0]
    lines = 0
    base = 0
    tail = b""
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            left = block.count(b"\n")
            start = 0
            while left:
                need = every - lines % every
                if need > left:
                    lines += left
                    break
                for _ in range(need):
                    start = block.index(b"\n", start) + 1
                lines += need
                left -= need
                offsets.append(base + start)
            base += len(block)
            tail = block[-1:]
    if base and tail != b"\n":
        return None
    if offsets[-1] != base:
        offsets.append(base)
    return offsets, lines


_PROBE_STEPS: Final = 16
_PROBE_WINDOW: Final = 1 << 16


def _probe_offsets(path: Path, every: int) -> tuple[list[int], int] | None:
    """``_line_offsets`` found by the entries' own ``seq`` instead of by counting lines.

    Counting newlines reads all of a large export in the parent before any worker can
    start (0.4 s for 1M entries on the reference machine). Entry ``n`` of an intact log
    says ``"seq":n``, so the line that starts chunk ``k`` is found by interpolation on
    ``seq``, reading a few 64 KiB windows per chunk. Nothing here is trusted: a worker
    checks that every line of its chunk carries the ``seq`` of its position, a chunk
    must hold exactly its number of lines and the chunks tile the file, so a log whose
    ``seq`` lie cannot pass the fast path with wrong boundaries; it fails it and the
    careful pass runs. ``None`` when the file does not end in a newline or the probe
    does not converge (then the lines are counted).

    Plain reads, not ``mmap``: a file cut while mapped would kill the verifier with
    SIGBUS instead of letting it report the cut.
    """
    with path.open("rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        tail = os.pread(fd, min(size, _PROBE_WINDOW), max(size - _PROBE_WINDOW, 0))
        if not tail.endswith(b"\n"):
            return None
        fields = _fields(tail[tail.rfind(b"\n", 0, len(tail) - 1) + 1 : -1])
        if fields is None or not 0 < fields[0] < size // 2:
            return None
        total = fields[0] + 1
        width = size / total
        offsets = [0]
        for target in range(every, total, every):
            found = _probe(fd, size, target, offsets[-1] + every * width, width)
            if found is None or found <= offsets[-1]:
                return None
            offsets.append(found)
    offsets.append(size)
    return offsets, total


def _probe(fd: int, size: int, target: int, guess: float, width: float) -> int | None:
    """Offset of the line whose ``seq`` is ``target``, searched from about byte ``guess``.

    Each step reads a window, takes the first line that starts in it and, if the
    target lies ahead within the window, walks to it; otherwise it moves the window
    by the ``seq`` difference times the mean line length ``width``.
    """
    pos = guess - _PROBE_WINDOW / 4
    for _ in range(_PROBE_STEPS):
        low = min(max(int(pos), 0), size - 1)
        data = os.pread(fd, _PROBE_WINDOW, low)
        start = data.find(b"\n") + 1 if low else 0
        stop = data.find(b"\n", start)
        if (low and not start) or stop < 0:
            return None  # a line longer than the window: let the lines be counted
        fields = _fields(data[start:stop])
        if fields is None:
            return None
        ahead = target - fields[0]
        line = start
        for _ in range(max(ahead, 0)):
            line = data.find(b"\n", line) + 1
            if not line:
                break
        else:
            stop = data.find(b"\n", line)
            landed = _fields(data[line:stop]) if stop >= 0 else None
            if landed is not None and landed[0] == target:
                return low + line
        pos = low + start + ahead * width - _PROBE_WINDOW / 4
    return None


def _claimed_size(note: bytes) -> int | None:
    """The tree size a note's second line claims, read without any check.

    Only used to plan the workers' chunks before the notes are verified; the plan is
    compared with the verified sizes before the chunks' results are used.
    """
    lines = note.split(b"\n", 2)
    if len(lines) < 3 or not lines[1].isdigit():  # bytes.isdigit: ASCII digits only
        return None
    return int(lines[1])


def _pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    # fork is cheap and safe in a single-threaded caller (the CLI); with threads around
    # (a running node) start clean interpreters instead.
    method = "fork" if threading.active_count() == 1 else "spawn"
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context(method)
    )


def _combine(
    chunks: Iterable[ChunkScan],
    cps: Sequence[_Cp],
    total: int,
    chunk_lines: int,
    progress: Progress | None,
) -> VerifyReport | None:
    """Join the chunks in order; a report if everything holds, else None (go careful).

    Every full chunk is a perfect subtree, so the tree over full chunks is a compact
    range over their roots, and a size inside a chunk adds that chunk's own peaks,
    which are all smaller than any chunk. Every checkpoint size must have been
    reported by its chunk (the chunks were planned from unverified notes).
    """
    if any(not c.signed or c.problem is not None or c.size > total for c in cps):
        return None
    by_size: dict[int, list[bytes]] = {}
    for cp in cps:
        by_size.setdefault(cp.size, []).append(cp.root)
    if any(root != EMPTY_ROOT for root in by_size.pop(0, [])):
        return None
    prefix = CompactRange()  # one pseudo-leaf per full chunk: its perfect subtree root
    expected_prev = _ZERO
    done = 0
    tail: tuple[bytes, ...] = ()
    for chunk in chunks:
        if chunk.bad or chunk.first != done or chunk.first_prev != expected_prev:
            return None
        full = chunk.count == chunk_lines
        base = prefix.peaks
        if full:
            prefix.extend(chunk.peaks)
        for size, peaks in chunk.peaks_at.items():
            roots = by_size.pop(size, None)
            if roots is None:
                continue
            if size == chunk.first + chunk_lines:
                root = prefix.root()
            else:
                root = CompactRange.from_state(size, base + peaks).root()
            if any(r != root for r in roots):
                return None
        done += chunk.count
        if chunk.last_leaf is not None:
            expected_prev = _b64(chunk.last_leaf)
        if not full:
            tail = chunk.peaks
        if progress is not None:
            progress(done, total)
    if done != total or by_size:
        return None
    root = CompactRange.from_state(total, prefix.peaks + tail).root()
    return VerifyReport(True, total, root, len(cps), None)


@dataclass
class _Plan:
    """A parallel pass: the worker tasks, and the checkpoints they were planned for.

    ``checkpoints`` verifies the notes when first asked (in the parent, while the
    workers scan) and keeps the result, which the careful pass reuses if the parallel
    pass does not hold. ``sizes`` and ``parse_from`` are what the tasks were given;
    the pass holds only if the verified checkpoints give the same.
    """

    tasks: list[tuple[Callable[..., ChunkScan], tuple[Any, ...]]]
    checkpoints: Callable[[], list[_Cp]]
    sizes: list[int]
    parse_from: int
    strict: bool
    total: int
    chunk_lines: int


_IN_FLIGHT_PER_WORKER: Final = 8
"""Chunks submitted ahead per worker: enough to keep the workers busy while the parent
checks the notes' signatures (~1 s at 1M entries), few enough that finished chunks
waiting to be combined stay a bounded amount of memory, whatever the log's size."""


def _verify_parallel(plan: _Plan, workers: int, progress: Progress | None) -> VerifyReport | None:
    with _pool(workers) as pool:
        tasks = iter(plan.tasks)
        window: collections.deque[concurrent.futures.Future[ChunkScan]] = collections.deque()

        def refill() -> None:
            while len(window) < _IN_FLIGHT_PER_WORKER * workers:
                task = next(tasks, None)
                if task is None:
                    return
                fn, args = task
                window.append(pool.submit(fn, *args))

        def results() -> Iterator[ChunkScan]:
            # Each chunk's result is dropped once combined (a list of every future
            # would keep them all, and memory would grow with the log).
            while window:
                future = window.popleft()
                refill()
                yield future.result()

        refill()
        try:
            cps = plan.checkpoints()  # the expensive signatures, while the workers scan
            if [c.size for c in cps] != plan.sizes or _parse_from(cps, plan.strict) != (
                plan.parse_from
            ):
                return None
            return _combine(results(), cps, plan.total, plan.chunk_lines, progress)
        finally:
            for future in window:  # after a failure, do not wait for chunks nobody needs
                future.cancel()


def _parse_from(cps: Sequence[_Cp], strict: bool) -> int:
    """First entry to parse strictly: all when strict, else those no checkpoint covers."""
    return 0 if strict else max((c.size for c in cps if c.signed), default=0)


def _sizes_in(sizes: Iterable[int], chunk: int, chunk_lines: int) -> list[int]:
    first = chunk * chunk_lines
    return sorted({s for s in sizes if first < s <= first + chunk_lines})


def _want_parallel(total: int, workers: int | None) -> int:
    """How many worker processes: by default one per CPU for a long log in a
    single-threaded caller (the CLI); a running node (threads) verifies in-process
    unless it asks for workers, so a desk check never competes with serving."""
    if workers is None:
        workers = (os.cpu_count() or 1) if threading.active_count() == 1 else 1
    return workers if workers > 1 and total >= 2 * _PARALLEL_CHUNK else 1


def _once(load: Callable[[], list[_Cp]]) -> Callable[[], list[_Cp]]:
    """``load`` run at most once; later calls return its first answer."""
    memo: list[list[_Cp]] = []

    def get() -> list[_Cp]:
        if not memo:
            memo.append(load())
        return memo[0]

    return get


# ---------------------------------------------------------------- entry points


def _verifiers(vkey: str, witnesses: Sequence[str]) -> tuple[Verifier, list[Verifier]]:
    try:
        log = parse_verifier_key(vkey)
        cosigners = [parse_verifier_key(w) for w in witnesses]
    except NoteError as exc:
        raise VerifySetupError(f"unusable verifier key: {exc}") from None
    if any(w.sig_type != SIG_COSIGNATURE_V1 for w in cosigners):
        raise VerifySetupError("witness keys must be cosignature/v1 verifier keys")
    return log, cosigners


def verify_lines(
    open_lines: Callable[[int], Iterator[bytes]],
    notes: Iterable[bytes],
    vkey: str,
    *,
    witnesses: Sequence[str] = (),
    min_cosignatures: int | None = None,
    strict: bool = False,
    total: int | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify entries from ``open_lines(skip)`` against checkpoint ``notes``.

    ``witnesses`` are cosigner verifier keys; the latest checkpoint must carry valid
    cosignatures from ``min_cosignatures`` of them (default: all), and every
    cosignature present from them must verify.
    """
    log, cosigners = _verifiers(vkey, witnesses)
    need = len(cosigners) if min_cosignatures is None else min_cosignatures
    cps = _load_checkpoints(notes, log, cosigners, need)
    return _Run(_Source(open_lines, total), cps, strict, progress).run()


def verify_export(
    directory: str | Path,
    *,
    vkey: str | None = None,
    witnesses: Sequence[str] = (),
    min_cosignatures: int | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify an export directory (SPEC 6). ``vkey`` defaults to the export's ``log.vkey``.

    Pass the log key from a trusted source when you can: the key inside an export
    only proves the export agrees with itself. A large log is first checked by
    ``workers`` processes (default: one per CPU) on aligned chunks; if anything is off
    the sequential pass runs and names the first bad entry.
    """
    root = Path(directory)
    entries, checkpoints = root / ENTRIES_FILE, root / CHECKPOINTS_FILE
    for path in (entries, checkpoints):
        if not path.is_file():
            raise VerifySetupError(f"{path} is missing: not an audit export")
    if vkey is None:
        key_file = root / VKEY_FILE
        if not key_file.is_file():
            raise VerifySetupError(f"{key_file} is missing and no log key was given")
        vkey = key_file.read_text(encoding="utf-8").strip()
    log, cosigners = _verifiers(vkey, witnesses)
    need = len(cosigners) if min_cosignatures is None else min_cosignatures
    notes = list(read_checkpoints(checkpoints))
    cps = _once(lambda: _load_checkpoints(notes, log, cosigners, need))
    planned = _export_plan(entries, notes, cps, strict, workers)
    if planned is not None:
        report = _verify_parallel(planned[0], planned[1], progress)
        if report is not None:
            return report
    source = _file_source(entries, count=progress is not None)
    return _Run(source, cps(), strict, progress).run()


def _export_plan(
    entries: Path,
    notes: Sequence[bytes],
    checkpoints: Callable[[], list[_Cp]],
    strict: bool,
    workers: int | None,
) -> tuple[_Plan, int] | None:
    """The parallel pass over an export and its number of workers, or None (sequential).

    Chunks are planned from what the notes *claim* (their size lines), so the workers
    can start before the signatures are checked; ``_verify_parallel`` compares the
    claims with the verified checkpoints before it trusts a chunk's result.
    """
    if workers is not None and workers <= 1:
        return None
    chunk = _PARALLEL_CHUNK
    located = _probe_offsets(entries, chunk) or _line_offsets(entries, chunk)
    if located is None:
        return None
    offsets, total = located
    count = _want_parallel(total, workers)
    if count <= 1:
        return None
    claimed = [_claimed_size(note) for note in notes]
    known = [size for size in claimed if size is not None]
    parse_from = 0 if strict else max(known, default=0)
    name = str(entries)
    tasks: list[tuple[Callable[..., ChunkScan], tuple[Any, ...]]] = [
        (
            _file_chunk,
            (name, start, end, k * chunk, _sizes_in(known, k, chunk), parse_from, chunk),
        )
        for k, (start, end) in enumerate(itertools.pairwise(offsets))
    ]
    sizes = sorted(-1 if size is None else size for size in claimed)
    return _Plan(tasks, checkpoints, sizes, parse_from, strict, total, chunk), count


def verify_database(
    db_path: str | Path,
    vkey: str | None = None,
    *,
    witnesses: Sequence[str] = (),
    min_cosignatures: int | None = None,
    strict: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify a node's audit database in place (read-only, safe while the node runs).

    Without ``vkey`` the key recorded in the database is used, which only shows the
    database agrees with itself; an auditor passes the published key.
    """
    try:
        path = database_path(db_path)
    except NotFound as exc:
        raise VerifySetupError(exc.detail) from None
    conn = connect_readonly(path)
    try:
        conn.execute("BEGIN")  # one snapshot for entries and checkpoints
        if vkey is None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'log_vkey'").fetchone()
            if row is None:
                raise VerifySetupError("no log key given and none recorded in the database")
            vkey = str(row[0])
        log, cosigners = _verifiers(vkey, witnesses)
        need = len(cosigners) if min_cosignatures is None else min_cosignatures
        notes = (
            (note + cosigs).encode("utf-8")
            for note, cosigs in conn.execute(
                "SELECT note, cosignatures FROM checkpoints ORDER BY size"
            )
        )
        cps = _load_checkpoints(notes, log, cosigners, need)
        total, low, high = conn.execute(
            "SELECT count(*), min(seq), max(seq) FROM entries"
        ).fetchone()
        contiguous = total and low == 0 and high == total - 1
        if contiguous and (count := _want_parallel(total, workers)) > 1:
            chunk = _PARALLEL_CHUNK
            parse_from = _parse_from(cps, strict)
            sizes = [c.size for c in cps]
            name = str(path)
            tasks: list[tuple[Callable[..., ChunkScan], tuple[Any, ...]]] = [
                (
                    _db_chunk,
                    (
                        name,
                        first,
                        min(chunk, total - first),
                        _sizes_in(sizes, k, chunk),
                        parse_from,
                        chunk,
                    ),
                )
                for k, first in enumerate(range(0, total, chunk))
            ]
            plan = _Plan(tasks, lambda: cps, sizes, parse_from, strict, total, chunk)
            report = _verify_parallel(plan, count, progress)
            if report is not None:
                return report
        return _Run(_db_source(conn), cps, strict, progress).run()
    finally:
        conn.close()
