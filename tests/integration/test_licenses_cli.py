"""``tongban license`` end to end: issue, 亮证码, verify at another city, revoke, list.

The commands run as a user runs them — ``gateway.cli.main.main`` with the tree's
``--config`` files, each in its own thread with its own event loop and its own
connections to the node's stores (as another process would have) — against Quzhou and
Ji'an running on loopback. One test also runs the real ``python -m gateway`` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.main import main
from gateway.licenses.samples import DISABILITY_CERTIFICATE
from tests.licenses.factory import HOLDER_ID
from tests.support.network import ROOT, Network, Tree

pytestmark = pytest.mark.timeout(90)

JIAN, QUZHOU = "cn-360800", "cn-330800"


def pin_ports(tree: Tree) -> None:
    """Write the ports the tree's nodes really use into its files, so a command given
    ``--config`` reaches the running partner nodes."""
    offset = tree.base_port - 8080
    for path in (tree.root / "config" / "demo").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(
            r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{int(m.group(1)) + offset}", text
        )
        path.write_text(text, encoding="utf-8")
    tree.base_port = 8080  # the files now hold the real ports: no further offset


def run(tree: Tree, node: str, *args: str) -> tuple[int, str, str]:
    """``tongban <args> --config <node's file>`` in this thread; (exit code, out, err)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--config", str(tree.config_path(node))])
    return code, out.getvalue(), err.getvalue()


async def tongban(tree: Tree, node: str, *args: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(run, tree, node, *args)


def printed(output: str) -> Any:
    """The JSON a ``--json`` command printed (indented, so its first line is ``{`` or
    ``[``), among the log lines the nodes running in this process print too."""
    found = re.search(r"^[{\[]\n.*?^[}\]]\n", output, re.MULTILINE | re.DOTALL)
    assert found is not None, output
    return json.loads(found.group())


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


async def test_issue_qr_verify_revoke_round_trip(
    tree: Tree, network: Network, tmp_path: Path
) -> None:
    pin_ports(tree)
    await network.start(QUZHOU)
    await network.start(JIAN)
    draft = write_json(
        tmp_path / "doc.json",
        {
            "type_code": DISABILITY_CERTIFICATE[0],
            "holder": {"name": "周建华", "id": HOLDER_ID},
            "valid_until": "2036-12-31",
            "data": {"disability_category": "肢体残疾"},
        },
    )
    code, out, err = await tongban(
        tree, QUZHOU, "license", "issue", "--file", str(draft), "--data",
        "disability_level=三级", "--json",
    )  # fmt: skip
    assert code == 0, err
    issued = printed(out)
    assert set(issued) == {"identifier", "license"}
    identifier = issued["identifier"]
    assert identifier.startswith(f"1.2.156.3005.2.{DISABILITY_CERTIFICATE[0]}.113308000026472540.")

    png = tmp_path / "qr.png"
    code, out, err = await tongban(
        tree, QUZHOU, "license", "qr", identifier, "--png", str(png), "--json"
    )
    assert code == 0, err
    minted = printed(out)
    assert minted["qr"].startswith("TB1:") and minted["version"] <= 15
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out, err = await tongban(
        tree, JIAN, "license", "verify", minted["qr"], "--purpose", "TB-360800-0302",
        "--holder-id", HOLDER_ID, "--json",
    )  # fmt: skip
    verdict = printed(out)
    assert (code, verdict["verdict"]) == (0, "valid"), verdict["checks"]
    assert verdict["license"]["data.disability_level"] == "三级"

    code, out, err = await tongban(
        tree, QUZHOU, "license", "revoke", identifier, "--reason", "持证人已换领新证", "--json"
    )
    assert code == 0, err
    assert printed(out)["status"] == "revoked"

    # a license file (the issue output) verified at Ji'an: a fresh command, a fresh cache
    saved = write_json(tmp_path / "license.json", issued)
    code, out, err = await tongban(tree, JIAN, "license", "verify", str(saved), "--json")
    verdict = printed(out)
    assert (code, verdict["verdict"], verdict["reasons"]) == (1, "invalid", ["revoked"])

    code, out, err = await tongban(tree, QUZHOU, "license", "list", "--json")
    [listed] = [r for r in printed(out) if r["identifier"] == identifier]
    assert (listed["status"], listed["holder"], listed["holder_id"]) == (
        "revoked",
        "周**",
        HOLDER_ID[:4] + "*" * 10 + HOLDER_ID[-4:],
    )
    assert HOLDER_ID not in out


async def test_status_commands_follow_the_rules_and_reinstate(tree: Tree, tmp_path: Path) -> None:
    wrong = HOLDER_ID[:-1] + ("0" if HOLDER_ID[-1] != "0" else "1")
    code, out, err = await tongban(
        tree, QUZHOU, "license", "issue", "--type", DISABILITY_CERTIFICATE[0],
        "--holder-name", "吴芳", "--holder-id", wrong, "--json",
    )  # fmt: skip
    assert code == 2 and "holder.id: check character" in err and err.count("\n") == 1
    assert wrong not in err
    code, out, err = await tongban(
        tree, QUZHOU, "license", "issue", "--type", DISABILITY_CERTIFICATE[0],
        "--holder-name", "吴芳", "--holder-id", HOLDER_ID, "--valid-until", "long-term", "--json",
    )  # fmt: skip
    assert code == 0, err
    identifier = printed(out)["identifier"]
    steps = [
        ("reinstate", 1, "conflict"),  # a valid license cannot be reinstated
        ("suspend", 0, "suspended"),
        ("suspend", 1, "conflict"),
        ("reinstate", 0, "valid"),
        ("revoke", 0, "revoked"),
        ("reinstate", 1, "conflict"),  # revoked is final
    ]
    for action, want_code, want in steps:
        code, out, err = await tongban(
            tree, QUZHOU, "license", action, identifier, "--reason", "测试", "--json"
        )
        assert code == want_code, (action, err)
        if code == 0:
            assert printed(out)["status"] == want
        else:
            assert err.startswith(f"tongban: {want}: ")


def test_the_console_command_exits_with_one_line_reasons(tree: Tree) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "license", "verify", "TB1:garbage", "--config",
         str(tree.config_path(JIAN))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "tongban: qr: not a compact JWS\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("verify", "/nonexistent/license.jws"), "cannot read /nonexistent/license.jws"),
        (("verify", "TB1:a.b.c", "--holder-id", "123"), "holder_id"),
        (("qr", "1.2.156.3005.2.X"), "identifier"),
        (("revoke", "1.2.156.3005.2.X", "--reason", "x"), "identifier"),
        (("issue", "--holder-name", "王"), "give the license type"),
        (("issue", "--type", "999", "--holder-id", HOLDER_ID), "type_code"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tree: Tree, args: tuple[str, ...], fragment: str) -> None:
    code, out, err = run(tree, QUZHOU, "license", *args)
    assert code == 2 and out == ""
    assert err.startswith("tongban: ") and err.count("\n") == 1 and fragment in err
    assert HOLDER_ID not in err
