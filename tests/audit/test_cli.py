"""``tongban audit``: export, verify, prove, verify-receipt, replay and erase, as run by users.

Most tests fill Ji'an's real audit store (SQLite under a fresh copy of the demo tree)
and run ``gateway.cli.main.main`` in-process; the walk-through starts Ji'an on loopback,
makes signed partner calls as Quzhou and audits them with the commands alone. Two
tests run the real ``python -m gateway`` process (exit code and stderr, and the
progress bar on a terminal).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.entry import parse_entry
from gateway.audit.events import AuditEvent
from gateway.audit.merkle import CompactRange, leaf_hash
from gateway.audit.note import (
    Checkpoint,
    cosign,
    cosigner_verifier_key,
    parse_note,
    sign_note,
    verifier_key,
)
from gateway.audit.service import open_audit_store
from gateway.cli.main import main
from gateway.encoding import b64u_decode, b64u_encode
from gateway.http.client import PartnerClient
from gateway.keys import load_log_key, load_token_key, log_origin
from tests.support.network import ROOT, Network, Tree

from .conftest import event

pytestmark = pytest.mark.timeout(60)

JIAN, QUZHOU = "cn-360800", "cn-330800"
LICENSE = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"
LICENSE_SEQS = (40, 41)
PAYLOAD_SEQ = 42
REQUEST_ID = "9b2f0a1e-demo"
WITNESS = "tongban/cn-330800/witness"


# ---------------------------------------------------------------- fixtures and helpers


@dataclasses.dataclass(frozen=True)
class Jian:
    """Ji'an's tree with a filled, checkpointed audit log (43 entries)."""

    tree: Tree
    config: Path
    vkey: Path

    def args(self, *args: str) -> list[str]:
        return [*args, "--config", str(self.config)]


@dataclasses.dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def fill_jian(tree: Tree) -> None:
    """40 varied entries, two uses of one license, one request's life, one payload."""
    cfg = tree.config(JIAN)
    async with open_audit_store(cfg) as store:
        for i in range(40):
            await store.append(event(i))
        for status in ("received", "accepted"):
            await store.append(
                AuditEvent(
                    event="service_request.status",
                    actor_type="partner",
                    actor_id="cn-430200",
                    subject=LICENSE,
                    meta={"request_id": REQUEST_ID, "status": status},
                )
            )
        await store.append(
            AuditEvent(
                event="license.fetch",
                actor_type="partner",
                actor_id=QUZHOU,
                payload="张三丰 11010519491231002X".encode(),
                meta={"request_id": REQUEST_ID},
            )
        )
        await Checkpointer(store, load_log_key(cfg), every=16).checkpoint_now()


@pytest.fixture
async def jian(tree: Tree) -> Jian:
    await fill_jian(tree)
    return Jian(tree, tree.config_path(JIAN), tree.certs / JIAN / "log.vkey")


def tongban(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    code = main(list(args))
    out, err = capsys.readouterr()
    return Result(code, out, err)


def one_line(err: str) -> str:
    """The single ``tongban: ...`` line a failing command writes to stderr."""
    assert err.count("\n") == 1 and err.startswith("tongban: "), err
    return err


def export_dir(jian: Jian, capsys: pytest.CaptureFixture[str], out: Path) -> Path:
    result = tongban(capsys, "audit", "export", *jian.args("--out", str(out)))
    assert result.code == 0, result.err
    return out


def change_one_byte(line: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the first ``old`` (one byte differs from ``new``) in an entry line."""
    assert len(old) == len(new) and sum(a != b for a, b in zip(old, new, strict=True)) == 1
    assert old in line, line
    return line.replace(old, new, 1)


def rewrite_line(path: Path, seq: int, change: Any) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[seq] = change(lines[seq])
    path.write_bytes(b"\n".join(lines))


# ---------------------------------------------------------------- --help


@pytest.mark.parametrize(
    "action", ["export", "verify", "prove", "verify-receipt", "replay", "erase"]
)
def test_every_command_has_help(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", action, "--help"])
    assert exit_info.value.code == 0
    assert f"tongban audit {action}" in capsys.readouterr().out


# ---------------------------------------------------------------- export


def test_export_writes_the_spec_layout(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "export"
    result = tongban(capsys, "audit", "export", *jian.args("--out", str(out), "--json"))
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["entries"] == 43 and summary["checkpoints"] == 3
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "entries.jsonl", "log.vkey"]
    lines = (out / "entries.jsonl").read_bytes().splitlines()
    assert [parse_entry(line).seq for line in lines] == list(range(43))
    assert (out / "log.vkey").read_text() == jian.vkey.read_text()
    assert (out / "checkpoints").read_text().count("\u2014 tongban/cn-360800/audit") == 3

    verified = tongban(capsys, "audit", "verify", str(out), "--vkey", str(jian.vkey), "--json")
    assert verified.json()["root"] == summary["root"]

    again = tongban(capsys, "audit", "export", *jian.args("--out", str(out)))
    assert again.code == 0
    assert "exported 43 entries and 3 checkpoints" in again.out
    assert summary["root"] in again.out


def test_export_refuses_bad_targets(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = tongban(capsys, "audit", "export", *jian.args("--out", str(a_file)))
    assert result.code == 2
    assert "is not a directory" in one_line(result.err)

    quzhou = str(jian.tree.config_path(QUZHOU))
    result = tongban(capsys, "audit", "export", "--config", quzhou, "--out", str(tmp_path / "q"))
    assert result.code == 2
    assert "cn-330800 has no audit log" in one_line(result.err)
    assert not (jian.tree.root / "var" / QUZHOU / "audit").exists()  # nothing created

    result = tongban(capsys, "audit", "export", "--node", "cn-999999", "--out", str(tmp_path))
    assert result.code == 2
    one_line(result.err)


# ---------------------------------------------------------------- verify


def test_verify_an_export_and_the_node_database(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = export_dir(jian, capsys, tmp_path / "export")
    result = tongban(capsys, "audit", "verify", str(out), "--vkey", str(jian.vkey), "--json")
    assert result.code == 0 and result.err == ""
    report = result.json()
    assert list(report) == ["ok", "entries", "root", "checkpoints", "first_bad"]
    assert report["ok"] is True and report["first_bad"] is None
    assert (report["entries"], report["checkpoints"]) == (43, 3)

    human = tongban(capsys, "audit", "verify", str(out), "--vkey", jian.vkey.read_text())
    assert human.code == 0
    assert human.out.startswith("ok: 43 entries, 3 checkpoints checked\n")

    node = tongban(capsys, "audit", "verify", *jian.args("--json"))
    assert node.code == 0 and node.json() == report

    # Without a pinned key it still checks, but says what that is worth.
    unpinned = tongban(capsys, "audit", "verify", str(out))
    assert unpinned.code == 0
    assert "pin the node's key with --vkey" in unpinned.err


def test_verify_names_the_changed_entry(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = export_dir(jian, capsys, tmp_path / "export")
    rewrite_line(
        out / "entries.jsonl", 20, lambda line: change_one_byte(line, b'"req-10"', b'"req-11"')
    )
    result = tongban(capsys, "audit", "verify", str(out), "--vkey", str(jian.vkey), "--json")
    assert result.code == 1
    bad = result.json()["first_bad"]
    assert (bad["seq"], bad["reason"]) == (20, "entry_changed")
    assert result.json()["ok"] is False
    assert "first bad entry 20 (entry_changed)" in one_line(result.err)

    human = tongban(capsys, "audit", "verify", str(out), "--vkey", str(jian.vkey))
    assert human.code == 1
    assert human.out.startswith("FAILED: first bad entry 20: entry_changed (entry bytes changed)")


def test_verify_a_cut_export_is_truncated(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = export_dir(jian, capsys, tmp_path / "export")
    lines = (out / "entries.jsonl").read_bytes().splitlines(keepends=True)
    (out / "entries.jsonl").write_bytes(b"".join(lines[:30]))
    result = tongban(capsys, "audit", "verify", str(out), "--vkey", str(jian.vkey), "--json")
    assert result.code == 1
    assert result.json()["first_bad"]["reason"] == "truncated"
    assert result.json()["first_bad"]["seq"] == 30


def test_a_forged_export_with_a_swapped_key_fails_against_the_pinned_key(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A forger rewrites entry 5, relinks the chain and re-signs every checkpoint with
    their own key, shipped as the export's log.vkey: it agrees with itself, so only the
    key pinned from a trusted source catches it."""
    out = export_dir(jian, capsys, tmp_path / "export")
    forger = Ed25519PrivateKey.generate()
    origin = log_origin(JIAN)
    entries = [parse_entry(line) for line in (out / "entries.jsonl").read_bytes().splitlines()]
    entries[5] = dataclasses.replace(entries[5], meta={**entries[5].meta, "status": 404})
    lines, tree, notes = [], CompactRange(), []
    prev = b64u_encode(bytes(32))
    for entry in entries:
        data = dataclasses.replace(entry, prev=prev).to_bytes()
        lines.append(data)
        tree.extend([leaf_hash(data)])
        prev = b64u_encode(leaf_hash(data))
    notes.append(sign_note(Checkpoint(origin, len(lines), tree.root()).body(), origin, forger))
    (out / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    (out / "checkpoints").write_bytes(b"".join(note + b"\n" for note in notes))
    (out / "log.vkey").write_text(verifier_key(origin, forger.public_key()) + "\n")

    self_consistent = tongban(capsys, "audit", "verify", str(out), "--json")
    assert self_consistent.code == 0  # the forgery agrees with itself ...
    pinned = tongban(capsys, "audit", "verify", str(out), "--vkey", str(jian.vkey), "--json")
    assert pinned.code == 1  # ... but not with the node's real key
    assert pinned.json()["first_bad"]["reason"] == "checkpoint_signature"
    assert "is not the pinned key" in pinned.err


async def add_cosignature(jian: Jian, witness: Ed25519PrivateKey) -> None:
    """Quzhou's witness cosigns Ji'an's latest checkpoint (as the witness protocol would)."""
    async with open_audit_store(jian.tree.config(JIAN)) as store:
        note = await store.latest_checkpoint()
        assert note is not None
        await store.add_cosignatures(43, cosign(parse_note(note).body, WITNESS, witness, 1))


def test_verify_with_witness_cosignatures(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    witness = load_log_key(jian.tree.config(QUZHOU))  # a node cosigns with its log key
    witness_vkey = cosigner_verifier_key(WITNESS, witness.public_key())
    quzhou_log_key = str(jian.tree.certs / QUZHOU / "log.vkey")
    absent = cosigner_verifier_key(
        "tongban/cn-350800/witness", Ed25519PrivateKey.generate().public_key()
    )
    asyncio.run(add_cosignature(jian, witness))
    out = export_dir(jian, capsys, tmp_path / "export")
    key = ("--vkey", str(jian.vkey))

    ok = tongban(capsys, "audit", "verify", str(out), *key, "--witness", witness_vkey)
    assert ok.code == 0, ok.err
    # Quzhou's published log key stands for its witness key.
    derived = tongban(capsys, "audit", "verify", str(out), *key, "--witness", quzhou_log_key)
    assert derived.code == 0, derived.err
    missing = tongban(
        capsys, "audit", "verify", str(out), *key, "--witness", witness_vkey,
        "--witness", absent, "--json",
    )  # fmt: skip
    assert missing.code == 1
    assert missing.json()["first_bad"]["reason"] == "cosignature_invalid"
    enough = tongban(
        capsys, "audit", "verify", str(out), *key, "--witness", witness_vkey,
        "--witness", absent, "--min-cosignatures", "1",
    )  # fmt: skip
    assert enough.code == 0

    receipt = tmp_path / "receipt.json"
    assert tongban(capsys, "audit", "prove", *jian.args("3", "--out", str(receipt))).code == 0
    checked = tongban(
        capsys, "audit", "verify-receipt", str(receipt), *key, "--witness", witness_vkey
    )
    assert checked.code == 0
    assert "cosigned as required by 1 witness key(s)" in checked.out
    refused = tongban(capsys, "audit", "verify-receipt", str(receipt), *key, "--witness", absent)
    assert refused.code == 1
    assert "0 witness cosignatures, 1 needed" in one_line(refused.err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{dir}", "--config", "{config}"], "not both"),
        ([], "give an export directory"),
        (["{empty}"], "is missing: not an audit export"),
        (["{dir}/nowhere"], "is not a directory"),
        (["{dir}", "--vkey", "garbage"], "--vkey: no such file: garbage"),
        (["{dir}", "--vkey", "a+b+c"], "--vkey: a+b+c is not a verifier key"),
        (["{dir}", "--min-cosignatures", "1"], "needs the witnesses' keys"),
        (["{dir}", "--witness", "{other_log}"], "is not a cosigner key (cosignature/v1)"),
        (["{dir}", "--vkey", "{witness}"], "is not a log key (Ed25519)"),
    ],
)
def test_verify_refuses_bad_input_in_one_line(
    jian: Jian,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    out = export_dir(jian, capsys, tmp_path / "export")
    (tmp_path / "empty").mkdir()
    values = {
        "dir": str(out),
        "config": str(jian.config),
        "empty": str(tmp_path / "empty"),
        "vkey": str(jian.vkey),
        "witness": cosigner_verifier_key(WITNESS, Ed25519PrivateKey.generate().public_key()),
        "other_log": verifier_key("example.org/log", Ed25519PrivateKey.generate().public_key()),
    }
    result = tongban(capsys, "audit", "verify", *(a.format(**values) for a in args))
    assert result.code == 2
    assert message in one_line(result.err)
    assert result.out == ""


def test_verify_exit_code_and_stderr_of_the_real_process(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = export_dir(jian, capsys, tmp_path / "export")
    rewrite_line(
        out / "entries.jsonl", 7, lambda line: change_one_byte(line, b"staff01", b"staff02")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "verify", str(out), "--vkey", str(jian.vkey)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "tongban: the audit log does not verify: first bad entry 7 (entry_changed)\n"
    )
    assert proc.stdout.startswith("FAILED: first bad entry 7: entry_changed")


def test_progress_bar_on_a_terminal_only(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = export_dir(jian, capsys, tmp_path / "export")
    assert capsys.readouterr().err == ""  # not a terminal here: no bar
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "audit",
                "verify",
                str(out),
                "--vkey",
                str(jian.vkey),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=30,
            check=False,
            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
        )
        os.close(follower)
        follower = -1
        seen = b""
        while True:  # bounded: the child has exited, the pty holds a finite amount
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: all writers gone and the buffer drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    assert b"verifying" in seen and b"43/43" in seen
    assert proc.stdout.startswith(b"ok: 43 entries")


# ---------------------------------------------------------------- prove and verify-receipt


def test_prove_and_verify_receipt(
    jian: Jian,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    printed = tongban(capsys, "audit", "prove", *jian.args("17"))
    assert printed.code == 0
    receipt = printed.json()
    assert (receipt["seq"], receipt["size"]) == (17, 43)
    assert parse_entry(b64u_decode(receipt["entry"])).seq == 17

    path = tmp_path / "receipt.json"
    written = tongban(capsys, "audit", "prove", *jian.args("17", "--out", str(path), "--json"))
    assert written.code == 0
    assert written.json() == {"out": str(path), "seq": 17, "size": 43, "leaf": receipt["leaf"]}
    assert json.loads(path.read_text()) == receipt

    checked = tongban(
        capsys, "audit", "verify-receipt", str(path), "--vkey", str(jian.vkey), "--json"
    )
    assert checked.code == 0 and checked.err == ""
    doc = checked.json()
    assert doc["ok"] is True and doc["key"] == "pinned"
    assert (doc["seq"], doc["size"], doc["origin"]) == (17, 43, "tongban/cn-360800/audit")
    assert doc["entry"]["seq"] == 17

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    from_stdin = tongban(capsys, "audit", "verify-receipt", "-", "--vkey", str(jian.vkey))
    assert from_stdin.code == 0
    assert from_stdin.out.startswith("ok: entry 17 is in tongban/cn-360800/audit at tree size 43")

    unpinned = tongban(capsys, "audit", "verify-receipt", str(path))
    assert unpinned.code == 0
    assert "pin the node's key with --vkey" in unpinned.err


def test_prove_refuses_what_it_cannot_prove(jian: Jian, capsys: pytest.CaptureFixture[str]) -> None:
    result = tongban(capsys, "audit", "prove", *jian.args("43"))
    assert result.code == 2
    assert "audit entry 43 does not exist: the log has 43 entries" in one_line(result.err)
    result = tongban(capsys, "audit", "prove", *jian.args("-1"))
    assert result.code == 2
    assert "SEQ must not be negative" in one_line(result.err)

    async def append_unsigned() -> None:
        async with open_audit_store(jian.tree.config(JIAN)) as store:
            await store.append(event(99))

    asyncio.run(append_unsigned())
    result = tongban(capsys, "audit", "prove", *jian.args("43", "--wait", "0"))
    assert result.code == 1
    assert "not covered by a signed checkpoint yet" in one_line(result.err)


def _flip(text: str) -> str:
    raw = bytearray(b64u_decode(text))
    raw[len(raw) // 2] ^= 1
    return b64u_encode(bytes(raw))


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda r: r.update(entry=_flip(r["entry"])), "leaf hash is not the hash"),
        (lambda r: r["proof"].__setitem__(0, _flip(r["proof"][0])), "inclusion proof fails"),
        (lambda r: r.update(seq=18), "the entry says seq 17"),
        (lambda r: r.pop("checkpoint"), "a receipt has exactly the fields"),
    ],
)
def test_verify_receipt_refuses_a_tampered_receipt(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path, tamper: Any, why: str
) -> None:
    receipt = tongban(capsys, "audit", "prove", *jian.args("17")).json()
    tamper(receipt)
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    result = tongban(
        capsys, "audit", "verify-receipt", str(path), "--vkey", str(jian.vkey), "--json"
    )
    assert result.code == 1
    assert result.json()["ok"] is False and result.json()["reason"] == "receipt_invalid"
    assert why in result.json()["detail"]
    assert why in one_line(result.err)


def test_verify_receipt_with_another_nodes_key_fails(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "receipt.json"
    assert tongban(capsys, "audit", "prove", *jian.args("5", "--out", str(path))).code == 0
    other = jian.tree.certs / QUZHOU / "log.vkey"
    result = tongban(capsys, "audit", "verify-receipt", str(path), "--vkey", str(other))
    assert result.code == 1
    assert "does not verify with the log key" in one_line(result.err)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not a receipt: not JSON"),
        (b"[1, 2]", "is not a receipt: not a JSON object"),
        (b"\xff\xfe", "is not a receipt: not JSON"),
        (b" " * (1 << 20) + b"{}", "is larger than 1048576 bytes"),
    ],
)
def test_verify_receipt_refuses_files_that_are_not_receipts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "receipt.json"
    path.write_bytes(content)
    result = tongban(capsys, "audit", "verify-receipt", str(path))
    assert result.code == 2
    assert message in one_line(result.err)
    missing = tongban(capsys, "audit", "verify-receipt", str(tmp_path / "nowhere.json"))
    assert missing.code == 2
    assert "cannot read" in one_line(missing.err)


# ---------------------------------------------------------------- replay


def test_replay_counts_by_partner_and_event(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = export_dir(jian, capsys, tmp_path / "export")
    from_export = tongban(capsys, "audit", "replay", str(out), "--json")
    assert from_export.code == 0
    counts = from_export.json()
    assert counts["total"] == 43
    assert counts["by_partner"]["cn-430200"] == {"service_request.status": 2}
    assert counts["by_partner"][QUZHOU]["license.fetch"] == 1
    assert sum(counts["by_outcome"].values()) == 43
    assert tongban(capsys, "audit", "replay", *jian.args("--json")).json() == counts

    human = tongban(capsys, "audit", "replay", str(out))
    assert human.out.startswith("43 entries\nby partner and event:\n")
    assert "service_request.status" in human.out


def test_replay_a_license_and_a_request(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uses = tongban(capsys, "audit", "replay", *jian.args("--license", LICENSE, "--json"))
    assert uses.code == 0
    doc = uses.json()
    assert [s["seq"] for s in doc["steps"]] == list(LICENSE_SEQS)
    assert LICENSE not in uses.out  # only the pseudonym is shown

    out = export_dir(jian, capsys, tmp_path / "export")
    by_subject = tongban(capsys, "audit", "replay", str(out), "--subject", doc["subject"], "--json")
    assert by_subject.json()["steps"] == doc["steps"]

    life = tongban(capsys, "audit", "replay", str(out), "--request", REQUEST_ID, "--json")
    steps = life.json()["steps"]
    assert [(s["seq"], s["event"]) for s in steps] == [
        (40, "service_request.status"),
        (41, "service_request.status"),
        (42, "license.fetch"),
    ]
    assert [s["meta"].get("status") for s in steps] == ["received", "accepted", None]

    human = tongban(capsys, "audit", "replay", *jian.args("--request", REQUEST_ID))
    assert human.out.startswith(f"life of request {REQUEST_ID}: 3 entries\n")
    assert "partner:cn-430200" in human.out


def test_replay_refuses_bad_input_in_one_line(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = export_dir(jian, capsys, tmp_path / "export")
    result = tongban(capsys, "audit", "replay", str(out), "--license", LICENSE)
    assert result.code == 2
    assert "--license needs the node's pseudonym key" in one_line(result.err)
    assert LICENSE not in result.err

    (tmp_path / "empty").mkdir()
    result = tongban(capsys, "audit", "replay", str(tmp_path / "empty"))
    assert result.code == 2
    assert "is not an audit export" in one_line(result.err)

    result = tongban(capsys, "audit", "replay", str(out), "--request", "x" * 201)
    assert result.code == 2
    one_line(result.err)

    rewrite_line(out / "entries.jsonl", 3, lambda line: b"not an entry")
    result = tongban(capsys, "audit", "replay", str(out))
    assert result.code == 1
    assert "run `tongban audit verify`" in one_line(result.err)


# ---------------------------------------------------------------- erase


def test_erase_deletes_the_payload_and_the_log_still_verifies(
    jian: Jian, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    receipt = tmp_path / "before.json"
    assert (
        tongban(capsys, "audit", "prove", *jian.args(str(PAYLOAD_SEQ), "--out", str(receipt))).code
        == 0
    )
    result = tongban(
        capsys, "audit", "erase",
        *jian.args(str(PAYLOAD_SEQ), "--reason", "holder_request", "--staff", "audit01", "--json"),
    )  # fmt: skip
    assert result.code == 0, result.err
    doc = result.json()
    assert (doc["erased_seq"], doc["reason"], doc["seq"]) == (PAYLOAD_SEQ, "holder_request", 43)

    assert tongban(capsys, "audit", "verify", *jian.args()).code == 0
    out = export_dir(jian, capsys, tmp_path / "export")
    last = parse_entry((out / "entries.jsonl").read_bytes().splitlines()[-1])
    assert (last.event, last.actor.id) == ("audit.erase", "audit01")
    assert last.meta == {"erased_seq": PAYLOAD_SEQ, "reason_code": "holder_request"}
    # Proofs made before the erasure still hold.
    checked = tongban(capsys, "audit", "verify-receipt", str(receipt), "--vkey", str(jian.vkey))
    assert checked.code == 0

    again = tongban(
        capsys, "audit", "erase", *jian.args(str(PAYLOAD_SEQ), "--reason", "holder_request")
    )
    assert again.code == 1
    assert "conflict: audit entry 42 has no payload to erase" in one_line(again.err)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["42", "--reason", "Holder asked to delete"], 2, "--reason must be a reason code"),
        (["42", "--reason", "张三要求删除"], 2, "--reason must be a reason code"),
        (["42", "--reason", "x" * 41], 2, "--reason must be a reason code"),
        (["42", "--reason", "holder_request", "--staff", "张三"], 2, "--staff must be"),
        (["-3", "--reason", "holder_request"], 2, "SEQ must not be negative"),
        (["7", "--reason", "holder_request"], 1, "conflict: audit entry 7 has no payload"),
        (["99", "--reason", "holder_request"], 1, "not_found: audit entry 99 does not exist"),
    ],
)
def test_erase_refuses_bad_input_in_one_line(
    jian: Jian, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    result = tongban(capsys, "audit", "erase", *jian.args(*args))
    assert result.code == code
    assert message in one_line(result.err)
    assert "张三" not in result.err


# ---------------------------------------------------------------- the walk-through


async def cli(*args: str) -> Result:
    """``tongban`` in a thread (it runs its own event loop), output captured."""

    def run() -> Result:
        import contextlib

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return Result(code, out.getvalue(), err.getvalue())

    return await asyncio.to_thread(run)


@pytest.fixture
async def quzhou_calls(tree: Tree, network: Network) -> AsyncIterator[PartnerClient]:
    await network.start(JIAN)
    client = PartnerClient(
        node_id=QUZHOU,
        partner_id=JIAN,
        base_url=tree.url(JIAN),
        key=load_token_key(tree.config(QUZHOU)),
    )
    try:
        yield client
    finally:
        await client.close()


async def test_walk_through_export_verify_tamper_and_receipt(
    tree: Tree, quzhou_calls: PartnerClient, tmp_path: Path
) -> None:
    """SPEC 6 "done when": audit a running Ji'an with nothing but the commands."""
    audits = []
    for _ in range(3):
        resp = await quzhou_calls.call("GET", "/v1/catalog")
        assert resp.status == 200
        audits.append(
            dict(p.strip().split("=", 1) for p in resp.headers["Tongban-Audit"].split(";"))
        )
    seqs = [int(a["seq"]) for a in audits]
    config = str(tree.config_path(JIAN))
    trusted_key = tmp_path / "jian.vkey"  # what the auditor fetched earlier, kept apart
    shutil.copy(tree.certs / JIAN / "log.vkey", trusted_key)

    out = tmp_path / "jian-audit"
    exported = await cli("audit", "export", "--config", config, "--out", str(out), "--json")
    assert exported.code == 0, exported.err
    assert exported.json()["entries"] >= seqs[-1] + 1

    ok = await cli("audit", "verify", str(out), "--vkey", str(trusted_key), "--json")
    assert ok.code == 0, ok.out + ok.err
    assert ok.json()["ok"] is True and ok.json()["entries"] == exported.json()["entries"]

    k = seqs[1]
    original = (out / "entries.jsonl").read_bytes().splitlines()[k]
    assert leaf_hash(original) == b64u_decode(audits[1]["leaf"])
    rewrite_line(out / "entries.jsonl", k, lambda line: change_one_byte(line, b'"GET"', b'"GEt"'))
    bad = await cli("audit", "verify", str(out), "--vkey", str(trusted_key), "--json")
    assert bad.code == 1
    assert bad.json()["first_bad"]["seq"] == k
    assert bad.json()["first_bad"]["reason"] == "entry_changed"
    assert (
        bad.err == f"tongban: the audit log does not verify: first bad entry {k} (entry_changed)\n"
    )

    receipt = tmp_path / "receipt.json"
    proved = await cli("audit", "prove", "--config", config, str(seqs[2]), "--out", str(receipt))
    assert proved.code == 0, proved.err
    checked = await cli(
        "audit", "verify-receipt", str(receipt), "--vkey", str(trusted_key), "--json"
    )
    assert checked.code == 0, checked.err
    doc = checked.json()
    assert (doc["ok"], doc["seq"], doc["leaf"]) == (True, seqs[2], audits[2]["leaf"])
    assert doc["entry"]["actor"] == {"type": "partner", "id": QUZHOU, "sub": None}
    assert (doc["entry"]["meta"]["method"], doc["entry"]["meta"]["status"]) == ("GET", 200)
