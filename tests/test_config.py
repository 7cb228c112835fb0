"""Configuration errors: each bad file names the file, the key and the reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.config import load_node_config
from gateway.errors import ConfigError
from tests.support.network import Tree

JIAN = "cn-360800"

BAD = {
    "unknown top-level key": ("[node]", "colour = 'red'\n[node]", "colour", "unknown key"),
    "unknown node key": (
        'id = "cn-360800"',
        'id = "cn-360800"\nport = 1',
        "node.port",
        "unknown key",
    ),
    "bad node id": ('id = "cn-360800"', 'id = "jian"', "node.id", "6-digit"),
    "bad listen": ('listen = "127.0.0.1:8080"', 'listen = "nowhere"', "node.listen", "host:port"),
    "bad URL": (
        'url = "http://127.0.0.1:8081"',
        'url = "ftp://x"',
        "partners[0].url",
        "not an http(s) URL",
    ),
    "missing key file": (
        'file = "../../certs/cn-330800/token.pub.pem"',
        'file = "../../certs/cn-330800/nope.pem"',
        "partners[0].keys[0].file",
        "does not exist",
    ),
    "algorithm not allowed": (
        'alg = "ES256"',
        'alg = "HS256"',
        "partners[0].keys[0].alg",
        "not allowed",
    ),
    "algorithm not fitting the key": (
        'alg = "ES256"',
        'alg = "EdDSA"',
        "partners[0].keys[0].alg",
        "does not fit",
    ),
    "wrong kid": (
        'alg = "ES256"',
        'alg = "ES256"\nkid = "abc"',
        "partners[0].keys[0].kid",
        "thumbprint",
    ),
    "unknown adapter": (
        'adapter = "xml_envelope"',
        'adapter = "soap"',
        "partners[1].adapter",
        "unknown adapter",
    ),
    "unknown endpoint": (
        'endpoints = ["*"]',
        'endpoints = ["everything"]',
        "partners[0].endpoints",
        "unknown endpoint",
    ),
    "agreement ends before it starts": (
        "agreement_until = 2030-12-31",
        "agreement_until = 2023-12-31",
        "partners[0].agreement_until",
        "ends before",
    ),
    "not TOML": ("[node]", "[node", "-", "not valid TOML"),
    "wrong type": ('name = "吉安 Ji\'an"', "name = 5", "node.name", "expected a string"),
    "bool for a number": ("rate = 200", "rate = true", "partners[0].rate", "boolean"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_names_file_key_and_reason(case: str, tree: Tree) -> None:
    old, new, key, reason = BAD[case]
    path = tree.config_path(JIAN)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert reason in info.value.reason


def test_duplicate_kid(tree: Tree) -> None:
    path = tree.config_path(JIAN)
    text = path.read_text(encoding="utf-8")
    dup = '\n[[partners.keys]]\nfile = "../../certs/cn-330800/token.pub.pem"\nalg = "ES256"\n'
    head, sep, tail = text.partition('\n[[partners]]\nid = "cn-350800"')
    path.write_text(head + dup + sep + tail, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert info.value.key == "partners[0].keys[1].kid"
    assert "duplicate kid" in info.value.reason


def test_partner_listed_twice(tree: Tree) -> None:
    path = tree.config_path(JIAN)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('id = "cn-350800"', 'id = "cn-430200"', 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert info.value.key == "partners[2].id"
    assert "listed twice" in info.value.reason


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_node_config("/nonexistent/node.toml")
    assert info.value.reason == "file does not exist"


def test_cli_prints_one_line_reason(tree: Tree) -> None:
    path = tree.config_path(JIAN)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('listen = "127.0.0.1:8080"', 'listen = "x"'), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == f"tongban: {path}: node.listen: expected host:port"


def test_demo_configs_load(tree: Tree) -> None:
    cfg = tree.config(JIAN)
    assert [p.id for p in cfg.partners] == ["cn-330800", "cn-350800", "cn-430200", "cn-150500"]
    assert cfg.partner_for_issuer("113308000026472540") is cfg.partner("cn-330800")
    assert cfg.key_registry().for_partner("cn-330800")
