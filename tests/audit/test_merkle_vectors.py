"""transparency-dev/merkle proof vectors: every good one verifies, every bad one raises."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.merkle import ProofError, verify_consistency, verify_inclusion

VECTOR_DIR = Path(__file__).resolve().parents[3] / "shared" / "testvectors" / "merkle"
VECTORS = sorted(VECTOR_DIR.rglob("*.json")) if VECTOR_DIR.is_dir() else []


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def check(vector: dict[str, Any]) -> None:
    proof = [b64(p) for p in vector["proof"] or []]
    if "leafIdx" in vector:
        verify_inclusion(
            b64(vector["leafHash"]),
            vector["leafIdx"],
            vector["treeSize"],
            proof,
            b64(vector["root"]),
        )
    else:
        verify_consistency(
            vector["size1"], vector["size2"], b64(vector["root1"]), b64(vector["root2"]), proof
        )


def test_vector_directory_is_present_and_complete() -> None:
    # Missing vectors must fail the run, never quietly skip it.
    assert VECTOR_DIR.is_dir(), f"Merkle test vectors missing at {VECTOR_DIR}"
    kinds = {p.relative_to(VECTOR_DIR).parts[0] for p in VECTORS}
    assert kinds == {"inclusion", "consistency"}
    assert len(VECTORS) >= 150
    assert any(not json.loads(p.read_text())["wantErr"] for p in VECTORS)


@pytest.mark.parametrize("path", VECTORS, ids=[str(p.relative_to(VECTOR_DIR)) for p in VECTORS])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text())
    if vector["wantErr"]:
        with pytest.raises(ProofError):
            check(vector)
    else:
        check(vector)
