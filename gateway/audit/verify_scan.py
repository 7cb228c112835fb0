"""The verifier's parallel fast path (审计核验快速通道): one aligned chunk of the log per task.

``gateway.audit.verify`` splits a long log into chunks of ``2**k`` entries, each a
perfect Merkle subtree, and gives each chunk to a worker process. A worker answers
one question about its chunk, "is every entry here exactly as in an intact log?",
and returns the hashes the parent needs to join the chunks and check every signed
root. It never says *what* is wrong: on any doubt it answers ``bad`` and the careful
sequential pass in ``verify`` runs from the start and names the first bad entry. So
this module may be stricter than the careful pass (give up more often), never laxer:
a chunk passes here only if every entry passes the careful pass's own fast checks.

Entry ``i`` (its RFC 8785 bytes, no newline) passes when:

- the *last* ``,"prev":"`` of the line is followed by the base64url of the previous
  leaf and a closing quote (the previous leaf of a chunk's first entry is the parent's
  to check, against the chunk before);
- ``,"seq":<i>,"subject":`` occurs after that prev value;
- the line ends in ``}``;
- from ``parse_from`` on (entries no signed checkpoint covers; every entry with
  ``--strict``) ``parse_entry`` accepts it.

Why the code looks the way it does: at a million entries the cost is Python's, per
entry. Every call into hashlib or into a ``bytes`` search costs a few hundred
nanoseconds on the reference machine whatever it does (OpenSSL hashes the 600 bytes
of a line in about half a microsecond), so the work is arranged to make as few calls
per entry as possible (``docs/performance.md`` section 3 has the profile):

- lines come from one ``bytes.split`` per 256 KiB block, not from a line iterator;
- the leaf hash ``SHA-256(0x00 || line)`` continues a pre-seeded hash object
  (``copy``/``update``), so no line is copied to prepend the ``0x00``;
- no leaf is base64-encoded on its own for the next line's ``prev``: ``leaf || 0x00``
  is 33 bytes, a whole number of base64 groups, so one ``b2a_base64`` of a block's
  joined leaves yields each leaf's unpadded base64url followed by ``A``; the block's
  prev values, sliced out as they are found, are compared with that in one ``==``;
- ``seq`` is looked for with ``rfind`` from the end of the line, where it is, not
  with a forward search from ``prev``; the last occurrence lies after ``prev`` exactly
  when some occurrence does, so the test is the same;
- the chunk's Merkle subtree is built level by level with one loop per level, and
  the peaks at any size inside the chunk are read off the levels, so the sixty-four
  checkpoints of a chunk cost a few list look-ups.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.audit.entry import EntryInvalid, parse_entry

__all__ = ["BLOCK_BYTES", "ChunkScan", "file_batches", "scan_batches"]

BLOCK_BYTES: Final = 1 << 18
"""Bytes read per block: large enough that per-block costs vanish, small enough that a
worker's memory stays a few megabytes whatever the chunk size."""

_PREV: Final = b',"prev":"'
_LEAF_SEED: Final = hashlib.sha256(b"\x00")
_NODE_SEED: Final = hashlib.sha256(b"\x01")
_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_BRACE: Final = 125  # ord("}")


@dataclass(frozen=True)
class ChunkScan:
    """What a worker learned about lines ``[first, first + count)`` of the log."""

    first: int
    count: int
    first_prev: bytes | None  # prev of the first line, checked against the previous chunk
    last_leaf: bytes | None
    bad: bool  # some line failed the fast path: the sequential pass will say which
    peaks_at: dict[int, tuple[bytes, ...]]  # size -> peaks of [first, size)
    peaks: tuple[bytes, ...]  # peaks of the whole chunk


def file_batches(path: str, start: int, end: int) -> Iterator[list[bytes]]:
    """The lines of bytes ``[start, end)`` of a file, without newlines, a block at a time.

    ``end`` must be a line boundary (the byte after a newline); a final piece without a
    newline (a cut file) is yielded as a line of its own for the caller to reject.
    """
    with Path(path).open("rb", buffering=0) as f:
        f.seek(start)
        left = end - start
        carry = b""
        while left > 0:
            block = f.read(min(BLOCK_BYTES, left))
            if not block:
                break
            left -= len(block)
            lines = block.split(b"\n")
            if carry:
                lines[0] = carry + lines[0]
            carry = lines.pop()  # the piece after the last newline: part of the next line
            if lines:
                yield lines
        if carry:
            yield [carry]


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the Merkle subtree over ``leaves``, leaves first.

    Level ``l`` holds the nodes over aligned runs of ``2**l`` leaves; a trailing odd
    node is not paired (it is a peak, not yet a subtree of the next level).
    """
    copy = _NODE_SEED.copy
    levels = [leaves]
    level = leaves
    while len(level) > 1:
        nodes: list[bytes] = []
        append = nodes.append
        for left, right in zip(level[0::2], level[1::2], strict=False):
            h = copy()
            h.update(left)
            h.update(right)
            append(h.digest())
        levels.append(nodes)
        level = nodes
    return levels


def _peaks(levels: list[list[bytes]], size: int) -> tuple[bytes, ...]:
    """Peaks of the first ``size`` leaves: one aligned perfect subtree per set bit."""
    out = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append(levels[level][start >> level])
            start += 1 << level
    return tuple(out)


def scan_batches(
    batches: Iterable[list[bytes]],
    first: int,
    sizes: Sequence[int],
    parse_from: int,
    limit: int,
) -> ChunkScan:
    """Run the fast path over the lines of one chunk, given in batches (module docs).

    ``sizes`` are the checkpoint sizes inside the chunk whose peaks the parent needs;
    ``limit`` is the chunk length: a chunk with more lines than that is bad.
    """
    leaves: list[bytes] = []
    first_prev: bytes | None = None
    expect: bytes | None = None  # the next line's prev text and closing quote
    i = first
    bad = False
    for lines in batches:
        n = len(lines)
        if not n:
            continue
        if i + n - first > limit:
            bad = True
            break
        block_leaves, prevs = _scan_lines(lines, i, parse_from)
        if block_leaves is None:
            bad = True
            break
        encoded = bytearray(
            binascii.b2a_base64(b"\x00".join(block_leaves) + b"\x00", newline=False).translate(
                _URLSAFE
            )
        )
        encoded[43::44] = b'"' * n  # "A" after each leaf's 43 characters -> closing quote
        if expect is None:
            if prevs[43:44] != b'"':
                bad = True
                break
            first_prev = prevs[:43]
            ok = prevs[44:] == encoded[:-44]
        else:
            ok = prevs[:44] == expect and prevs[44:] == encoded[:-44]
        if not ok:
            bad = True
            break
        expect = bytes(encoded[-44:])
        leaves += block_leaves
        i += n
    count = i - first
    if bad or not leaves:
        return ChunkScan(first, count, first_prev, None, bad, {}, ())
    levels = _levels(leaves)
    peaks_at = {size: _peaks(levels, size - first) for size in sizes if first < size <= i}
    return ChunkScan(first, count, first_prev, leaves[-1], False, peaks_at, _peaks(levels, count))


def _scan_lines(
    lines: list[bytes], first: int, parse_from: int
) -> tuple[list[bytes] | None, bytes]:
    """Check one batch of lines and hash them: ``(leaves, joined prev texts)``.

    ``leaves`` is ``None`` when any line fails a check. Each prev text is 44 bytes, the
    43-character value and the byte after it (the closing quote when intact).
    """
    n = len(lines)
    needles = (b',"seq":%d,"subject":\n' * n % tuple(range(first, first + n))).split(b"\n")
    copy = _LEAF_SEED.copy
    leaves: list[bytes] = []
    prevs: list[bytes] = []
    add_leaf = leaves.append
    add_prev = prevs.append
    try:
        for line, needle in zip(lines, needles, strict=False):
            p = line.rfind(_PREV)
            # rfind(needle) >= p + 53 holds exactly when find(needle, p + 53) finds it,
            # and searches only the short tail after ``seq``.
            if p < 0 or line[-1] != _BRACE or line.rfind(needle) < p + 53:
                return None, b""
            add_prev(line[p + 9 : p + 53])
            h = copy()
            h.update(line)
            add_leaf(h.digest())
    except IndexError:  # an empty line
        return None, b""
    if first + n > parse_from:
        for k in range(max(parse_from - first, 0), n):
            try:
                parse_entry(lines[k])
            except EntryInvalid:
                return None, b""
    return leaves, b"".join(prevs)
