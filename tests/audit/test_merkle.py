"""Merkle core against a naive RFC 9162 reference, plus properties of proofs and tampering."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    ProofError,
    consistency_proof,
    consistency_proof_from_nodes,
    inclusion_proof,
    inclusion_proof_from_nodes,
    leaf_hash,
    node_hash,
    nodes_for_consistency,
    nodes_for_inclusion,
    nodes_for_root,
    root_at,
    root_from_nodes,
    verify_consistency,
    verify_inclusion,
)

MAX = 300

# --- RFC 9162 section 2.1, written as literally as possible -------------------------


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return d[0]
    k = ref_k(n)
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


# --- helpers -----------------------------------------------------------------------------


def leaves(n: int) -> list[bytes]:
    # Distinct entries: equal leaves could make a moved index verify by coincidence.
    return [leaf_hash(b'{"seq":%d}' % i) for i in range(n)]


LEAVES = leaves(MAX)


class Store:
    """Perfect-subtree store as a node writer would fill it via CompactRange.append."""

    def __init__(self, n: int) -> None:
        self.size = n
        self.nodes: dict[NodeId, bytes] = {}
        self.cr = CompactRange()
        for leaf in LEAVES[:n]:
            for level, index, h in self.cr.append(leaf):
                assert (level, index) not in self.nodes
                self.nodes[(level, index)] = h
        self.reads: list[NodeId] = []

    def get(self, level: int, index: int) -> bytes:
        # A proof for a tree of `size` leaves may only read nodes complete at that size.
        assert (index + 1) << level <= self.size, (level, index, self.size)
        self.reads.append((level, index))
        return self.nodes[(level, index)]


def flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    h = bytearray(out[i])
    h[bit // 8] ^= 1 << (bit % 8)
    out[i] = bytes(h)
    return out


# --- hashing -------------------------------------------------------------------------------


def test_known_hashes() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    # RFC 6962 test data (certificate-transparency-go): hash of the empty leaf.
    assert (
        leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )


def test_leaf_and_node_are_domain_separated() -> None:
    left, right = LEAVES[0], LEAVES[1]
    assert leaf_hash(left + right) != node_hash(left, right)


# --- CompactRange --------------------------------------------------------------------------


def test_compact_range_roots_match_reference_for_every_size() -> None:
    cr = CompactRange()
    assert cr.root() == EMPTY_ROOT
    for n in range(1, 130):
        cr.append(LEAVES[n - 1])
        assert cr.size == n
        assert len(cr.peaks) == n.bit_count()
        assert cr.root() == ref_mth(LEAVES[:n])


def test_append_reports_exactly_the_completed_perfect_subtrees() -> None:
    cr = CompactRange()
    for n in range(1, 200):
        done = cr.append(LEAVES[n - 1])
        # Leaf n-1 completes every subtree whose right end is n: one per trailing zero of n.
        tz = (n & -n).bit_length() - 1
        assert [(lv, ix) for lv, ix, _ in done] == [(lv, (n >> lv) - 1) for lv in range(tz + 1)]
        for lv, ix, h in done:
            assert h == ref_mth(LEAVES[ix << lv : (ix + 1) << lv])


def test_extend_matches_append() -> None:
    a, b = CompactRange(), CompactRange()
    for leaf in LEAVES[:257]:
        a.append(leaf)
    b.extend(LEAVES[:100])
    b.extend(iter(LEAVES[100:257]))
    assert (a.size, a.peaks, a.root()) == (b.size, b.peaks, b.root())


def test_extend_keeps_a_consistent_state_when_a_leaf_is_bad() -> None:
    cr = CompactRange()
    with pytest.raises(ValueError, match="32 bytes"):
        cr.extend([LEAVES[0], LEAVES[1], b"short"])
    assert cr.size == 2
    assert cr.root() == ref_mth(LEAVES[:2])


def test_state_round_trip_and_copy() -> None:
    cr = CompactRange()
    cr.extend(LEAVES[:77])
    restored = CompactRange.from_state(cr.size, cr.peaks)
    twin = cr.copy()
    for c in (cr, restored, twin):
        c.extend(LEAVES[77:150])
    assert cr.root() == restored.root() == twin.root() == ref_mth(LEAVES[:150])


@pytest.mark.parametrize(
    ("size", "peaks"),
    [(-1, []), (3, [b"\x00" * 32]), (1, [b"\x00" * 31]), (0, [b"\x00" * 32])],
)
def test_from_state_rejects_a_wrong_shape(size: int, peaks: list[bytes]) -> None:
    with pytest.raises(ValueError):
        CompactRange.from_state(size, peaks)


def test_append_rejects_entry_bytes_instead_of_a_leaf_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange().append(b'{"seq":0}')


# --- roots and proofs from stored nodes --------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.integers(0, MAX))
def test_root_at_matches_reference_and_accumulator(size: int) -> None:
    store = Store(size)
    assert root_at(size, store.get) == ref_mth(LEAVES[:size]) == store.cr.root()
    assert store.reads == nodes_for_root(size)
    assert root_from_nodes(size, store.nodes) == store.cr.root()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_proofs_verify_and_resist_tampering(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    store = Store(size)
    root = store.cr.root()
    leaf = LEAVES[index]

    proof = inclusion_proof(index, size, store.get)
    assert proof == ref_path(index, LEAVES[:size])
    assert store.reads == nodes_for_inclusion(index, size)
    assert inclusion_proof_from_nodes(index, size, store.nodes) == proof
    verify_inclusion(leaf, index, size, proof, root)

    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="hash")
        bit = data.draw(st.integers(0, 255), label="bit")
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, flip(proof, i, bit), root)
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, [*proof, LEAVES[0]], root)
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[(index + 1) % MAX], index, size, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, hashlib.sha256(root).digest())

    other_index = data.draw(st.integers(0, size).filter(lambda j: j != index), label="other")
    with pytest.raises(ProofError):
        verify_inclusion(leaf, other_index, size, proof, root)

    # Another size, with that size's true root: the proof must not carry over.
    other_size = data.draw(st.integers(index + 1, MAX).filter(lambda s: s != size), label="osz")
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, other_size, proof, ref_mth(LEAVES[:other_size]))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_proofs_verify_and_resist_tampering(data: st.DataObject) -> None:
    new = data.draw(st.integers(0, MAX), label="new")
    old = data.draw(st.integers(0, new), label="old")
    store = Store(new)
    old_root, new_root = ref_mth(LEAVES[:old]), store.cr.root()

    proof = consistency_proof(old, new, store.get)
    assert proof == ([] if old in (0, new) else ref_proof(old, LEAVES[:new]))
    assert store.reads == nodes_for_consistency(old, new)
    assert consistency_proof_from_nodes(old, new, store.nodes) == proof
    verify_consistency(old, new, old_root, new_root, proof)

    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="hash")
        bit = data.draw(st.integers(0, 255), label="bit")
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, flip(proof, i, bit))
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, [*proof, LEAVES[0]])
    if old > 0:
        # (From the empty tree every new root is consistent, so only here.)
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, hashlib.sha256(new_root).digest(), proof)
        with pytest.raises(ProofError):
            verify_consistency(old, new, hashlib.sha256(old_root).digest(), new_root, proof)
        # Other sizes with their own true roots: the proof must not carry over.
        other_old = data.draw(st.integers(1, MAX).filter(lambda s: s != old), label="oold")
        with pytest.raises(ProofError):
            verify_consistency(other_old, new, ref_mth(LEAVES[:other_old]), new_root, proof)
        other_new = data.draw(st.integers(old, MAX).filter(lambda s: s != new), label="onew")
        with pytest.raises(ProofError):
            verify_consistency(old, other_new, old_root, ref_mth(LEAVES[:other_new]), proof)


def test_a_changed_leaf_breaks_consistency_with_the_old_root() -> None:
    store = Store(100)
    forged = list(LEAVES[:100])
    forged[37] = leaf_hash(b"changed")
    with pytest.raises(ProofError):
        verify_consistency(
            50, 100, ref_mth(forged[:50]), store.cr.root(), consistency_proof(50, 100, store.get)
        )


# --- arguments, edge cases and scale -----------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (-1, 4)])
def test_inclusion_proof_rejects_impossible_positions(index: int, size: int) -> None:
    with pytest.raises(ValueError):
        nodes_for_inclusion(index, size)
    with pytest.raises(ValueError):
        inclusion_proof(index, size, lambda level, idx: b"")


@pytest.mark.parametrize(("old", "new"), [(5, 4), (-1, 3)])
def test_consistency_proof_rejects_shrinking(old: int, new: int) -> None:
    with pytest.raises(ValueError):
        nodes_for_consistency(old, new)


def test_trivial_consistency_cases() -> None:
    root = ref_mth(LEAVES[:9])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 9, EMPTY_ROOT, root, [])
    verify_consistency(9, 9, root, root, [])
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 9, root, root, [])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(9, 9, root, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="larger"):
        verify_consistency(10, 9, root, root, [])


def test_missing_fetched_node_is_named() -> None:
    with pytest.raises(KeyError, match="level 0, index 1"):
        inclusion_proof_from_nodes(0, 2, {})


def test_proofs_in_a_ten_million_entry_log_need_logarithmic_reads() -> None:
    size = 10_000_000
    for index in (0, 1, 4_999_999, 9_999_998, 9_999_999):
        ids = nodes_for_inclusion(index, size)
        assert len(ids) <= 2 * size.bit_length()
        assert all((ix + 1) << lv <= size for lv, ix in ids)
    for old in (1, 3, 65_536, 9_999_999):
        assert len(nodes_for_consistency(old, size)) <= 2 * size.bit_length()
    assert len(nodes_for_root(size)) == size.bit_count()


def test_verifier_error_reasons_are_specific() -> None:
    store = Store(8)
    proof = inclusion_proof(3, 8, store.get)
    root = store.cr.root()
    with pytest.raises(ProofError, match="outside"):
        verify_inclusion(LEAVES[3], 8, 8, proof, root)
    with pytest.raises(ProofError, match="needs 3"):
        verify_inclusion(LEAVES[3], 3, 8, proof[:2], root)
    with pytest.raises(ProofError, match="32-byte"):
        verify_inclusion(LEAVES[3][:31], 3, 8, proof, root)
    with pytest.raises(ProofError, match="does not lead"):
        verify_inclusion(LEAVES[4], 3, 8, proof, root)
