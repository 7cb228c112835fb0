"""RFC 9162 Merkle tree over audit leaf hashes (审计日志 Merkle 树): hashing, proofs, checks.

Pure functions and one small accumulator; no I/O. The store keeps the hash of every
*perfect* subtree, addressed as ``(level, index)``: the node covering leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Any
proof for any tree size then needs O(log n) stored nodes, and the hash of a
non-perfect subtree (the right edge of a tree whose size is not a power of two) is
composed from perfect ones. ``nodes_for_*`` name the nodes a proof needs so a store
can fetch them in one query; ``*_from_nodes`` assemble the proof from what it fetched.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and *raises*
``ProofError`` with a reason; it never returns False, so a caller cannot forget to
check. Proof generation raises plain ``ValueError`` for impossible arguments: that
is a caller's bug, not evidence about the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "GetNode",
    "NodeId",
    "ProofError",
    "consistency_proof",
    "consistency_proof_from_nodes",
    "inclusion_proof",
    "inclusion_proof_from_nodes",
    "leaf_hash",
    "node_hash",
    "nodes_for_consistency",
    "nodes_for_inclusion",
    "nodes_for_root",
    "root_at",
    "root_from_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree: leaves ``[index << level, (index + 1) << level)``."""

GetNode = Callable[[int, int], bytes]
"""Returns the stored hash of the perfect subtree ``(level, index)``."""

_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()
"""Root of the empty tree (RFC 9162 section 2.1.1: the hash of the empty string)."""


class ProofError(ValueError):
    """A Merkle proof does not prove what it claims; the message says why."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the domain byte keeps leaves from posing as interior nodes."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), the RFC 9162 interior node."""
    return _sha256(b"\x01" + left + right).digest()


# --- accumulator -------------------------------------------------------------------


class CompactRange:
    """Merkle accumulator over leaves ``[0, size)``: the perfect-subtree roots on the right edge.

    It holds one hash per set bit of ``size`` (largest subtree first), so memory stays
    O(log n) however long the log grows. The writer uses ``append`` to learn which
    perfect nodes became complete and must be stored; the streaming verifier uses
    ``extend``, which skips building that list.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[bytes] = []

    @classmethod
    def from_state(cls, size: int, peaks: Sequence[bytes]) -> CompactRange:
        """Restore from a saved ``size`` and ``peaks`` (e.g. after a restart), checking shape."""
        if size < 0:
            raise ValueError("size must not be negative")
        if len(peaks) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} peaks, not {len(peaks)}"
            )
        for peak in peaks:
            _require_hash_arg("peak", peak)
        cr = cls()
        cr._size = size
        cr._peaks = [bytes(p) for p in peaks]
        return cr

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees covering ``[0, size)``, left to right (largest first)."""
        return tuple(self._peaks)

    def copy(self) -> CompactRange:
        """An independent copy, e.g. to try a batch before committing it."""
        return CompactRange.from_state(self._size, self._peaks)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf *hash*; return every perfect node it completed as ``(level, index, hash)``.

        The first element is the leaf itself at level 0; a store persists them all so
        proofs never need more than the stored perfect subtrees.
        """
        _require_hash_arg("leaf hash", leaf)
        peaks = self._peaks
        index = self._size
        h = bytes(leaf)
        level = 0
        completed = [(0, index, h)]
        # Each trailing 1 bit of the old size is a peak of the same height to merge with.
        while index & 1:
            h = _sha256(b"\x01" + peaks.pop() + h).digest()
            index >>= 1
            level += 1
            completed.append((level, index, h))
        peaks.append(h)
        self._size += 1
        return completed

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add many leaf hashes without reporting completed nodes: the verifier's fast path."""
        peaks = self._peaks
        size = self._size
        sha = _sha256
        try:
            for leaf in leaves:
                if len(leaf) != HASH_SIZE:
                    raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf)}")
                h = leaf
                n = size
                while n & 1:
                    h = sha(b"\x01" + peaks.pop() + h).digest()
                    n >>= 1
                peaks.append(h)
                size += 1
        finally:
            # Leaves taken before a bad one stay in; size must agree with the peaks.
            self._size = size

    def root(self) -> bytes:
        """RFC 9162 root of ``[0, size)``: the peaks folded right to left."""
        return _fold(self._peaks) if self._peaks else EMPTY_ROOT

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size})"


# --- which nodes a proof needs -------------------------------------------------------


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (n >= 2): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_ids(lo: int, hi: int) -> list[NodeId]:
    """Perfect subtrees covering ``[lo, hi)`` as RFC 9162 splits it, left to right.

    Every subtree of the RFC 9162 tree starts at a multiple of the power of two at
    or above its size, so taking the size's bits from the top always yields aligned
    (storable) subtrees.
    """
    ids: list[NodeId] = []
    size = hi - lo
    while size:
        level = size.bit_length() - 1
        ids.append((level, lo >> level))
        lo += 1 << level
        size -= 1 << level
    return ids


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges of the subtrees in ``PATH(index, D[0:size])``, in proof order (leaf first)."""
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """Leaf ranges of the subtrees in ``PROOF(old, D[0:new])`` (RFC 9162 2.1.4.1), in order."""
    out: list[tuple[int, int]] = []
    lo, hi = 0, new
    whole_old_tree = True  # SUBPROOF's flag b: the old root itself is known to the verifier
    while old != hi:
        k = _split(hi - lo)
        if old - lo <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    if not whole_old_tree:
        out.append((lo, hi))
    out.reverse()
    return out


def _check_inclusion_args(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")


def _check_consistency_args(old: int, new: int) -> None:
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")


def _ids_for(ranges: Iterable[tuple[int, int]]) -> list[NodeId]:
    return [node for lo, hi in ranges for node in _perfect_ids(lo, hi)]


def nodes_for_inclusion(index: int, size: int) -> list[NodeId]:
    """Every stored node ``inclusion_proof(index, size, ...)`` reads, without duplicates."""
    _check_inclusion_args(index, size)
    return _ids_for(_inclusion_ranges(index, size))


def nodes_for_consistency(old: int, new: int) -> list[NodeId]:
    """Every stored node ``consistency_proof(old, new, ...)`` reads, without duplicates."""
    _check_consistency_args(old, new)
    if old == 0 or old == new:
        return []
    return _ids_for(_consistency_ranges(old, new))


def nodes_for_root(size: int) -> list[NodeId]:
    """The stored nodes ``root_at(size, ...)`` reads: one per set bit of ``size``."""
    if size < 0:
        raise ValueError("size must not be negative")
    return _perfect_ids(0, size)


# --- assembling proofs from stored nodes -------------------------------------------


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Hash of adjacent subtrees given left to right, joined as RFC 9162 does (right first)."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = _sha256(b"\x01" + left + h).digest()
    return h


def _range_hash(lo: int, hi: int, get_node: GetNode) -> bytes:
    return _fold([get_node(level, idx) for level, idx in _perfect_ids(lo, hi)])


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 inclusion proof (audit path) of leaf ``index`` in the tree of ``size`` leaves."""
    _check_inclusion_args(index, size)
    return [_range_hash(lo, hi, get_node) for lo, hi in _inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 consistency proof from size ``old`` to ``new``; empty when either is trivial."""
    _check_consistency_args(old, new)
    if old == 0 or old == new:
        return []
    return [_range_hash(lo, hi, get_node) for lo, hi in _consistency_ranges(old, new)]


def root_at(size: int, get_node: GetNode) -> bytes:
    """RFC 9162 root of the first ``size`` leaves, from stored perfect subtrees."""
    ids = nodes_for_root(size)
    if not ids:
        return EMPTY_ROOT
    return _fold([get_node(level, idx) for level, idx in ids])


def _lookup(nodes: Mapping[NodeId, bytes]) -> GetNode:
    def get_node(level: int, index: int) -> bytes:
        try:
            return nodes[(level, index)]
        except KeyError:
            raise KeyError(f"Merkle node (level {level}, index {index}) was not fetched") from None

    return get_node


def inclusion_proof_from_nodes(index: int, size: int, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """``inclusion_proof`` over nodes fetched in bulk (keys from ``nodes_for_inclusion``)."""
    return inclusion_proof(index, size, _lookup(nodes))


def consistency_proof_from_nodes(old: int, new: int, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """``consistency_proof`` over nodes fetched in bulk (keys from ``nodes_for_consistency``)."""
    return consistency_proof(old, new, _lookup(nodes))


def root_from_nodes(size: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    """``root_at`` over nodes fetched in bulk (keys from ``nodes_for_root``)."""
    return root_at(size, _lookup(nodes))


# --- verification ----------------------------------------------------------------------


def _require_hash_arg(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _require_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not a {HASH_SIZE}-byte SHA-256 hash")


def _require_proof_hashes(proof: Sequence[bytes], expected: int) -> None:
    if len(proof) != expected:
        raise ProofError(f"proof has {len(proof)} hashes, this position needs {expected}")
    for i, p in enumerate(proof):
        _require_hash(f"proof hash {i}", p)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf *hash* ``leaf`` sits at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 section 2.1.3.2. Raises ``ProofError`` on any mismatch.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _require_hash("leaf hash", leaf)
    _require_hash("root", root)
    _require_proof_hashes(proof, len(_inclusion_ranges(index, size)))

    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            # On the right edge: skip the levels where this node has no right sibling.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the root")
    if r != root:
        raise ProofError("inclusion proof does not lead to the given root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 section 2.1.4.2 for ``0 < old_size < new_size``. Equal sizes need an
    empty proof and equal roots. The empty tree is a prefix of every tree, so size 0
    needs an empty proof and ``EMPTY_ROOT``. Raises ``ProofError`` on any mismatch.
    """
    if old_size < 0 or new_size < 0:
        raise ProofError("tree sizes must not be negative")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("the root of the empty tree must be SHA-256 of the empty string")
    if old_size == new_size:
        if proof:
            raise ProofError("trees of equal size need an empty consistency proof")
        if old_root != new_root:
            raise ProofError(f"two different roots for tree size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency with the empty tree needs an empty proof")
        _require_hash("new root", new_root)
        return

    _require_hash("old root", old_root)
    _require_hash("new root", new_root)
    _require_proof_hashes(proof, len(_consistency_ranges(old_size, new_size)))

    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # A power-of-two old tree is itself a node of the new tree; the proof omits it.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the path to the root")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")
