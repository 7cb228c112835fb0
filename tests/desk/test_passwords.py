"""scrypt desk hashes: per-user salt, parameters in the string, constant-time check."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.desk.accounts import read_accounts
from gateway.desk.errors import SignInFailed
from gateway.desk.passwords import (
    DEFAULT_LOG2_N,
    check_password_rules,
    hash_password,
    parse_hash,
    verify_password,
)

ROOT = Path(__file__).resolve().parents[2]
FAST = 10  # tests hash at N = 2**10; the format and the check are the same


def test_hash_round_trip_and_wrong_password_is_sign_in_failed() -> None:
    stored = parse_hash(hash_password("correct horse battery", log2_n=FAST))
    verify_password(stored, "correct horse battery")
    with pytest.raises(SignInFailed) as exc:
        verify_password(stored, "correct horse batterY")
    assert exc.value.code == "sign_in_failed"
    assert exc.value.status == 401


def test_each_hash_has_its_own_salt_and_carries_its_parameters() -> None:
    a = hash_password("same password here", log2_n=FAST)
    b = hash_password("same password here", log2_n=FAST, r=4)
    assert a != b
    assert a.startswith("$scrypt$ln=10,r=8,p=1$")
    assert b.startswith("$scrypt$ln=10,r=4,p=1$")
    assert parse_hash(a).salt != parse_hash(b).salt
    verify_password(parse_hash(b), "same password here")  # r=4 taken from the string


def test_default_cost_is_64_mib() -> None:
    stored = parse_hash(hash_password("a long enough one"))
    assert stored.log2_n == DEFAULT_LOG2_N == 16
    assert stored.r == 8


@pytest.mark.parametrize(
    "text",
    [
        "",
        "scrypt$ln=16,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43,  # no leading $
        "$scrypt$ln=9,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43,  # too cheap
        "$scrypt$ln=21,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43,  # too costly
        "$scrypt$ln=16,r=8,p=1$short$" + "A" * 43,  # salt too short
        "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 42,  # key not 32 bytes
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    ],
)
def test_malformed_stored_hashes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hash(text)


@pytest.mark.parametrize(("password", "rule"), [("short", "at least 10"), ("x" * 1025, "at most")])
def test_password_rules(password: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        check_password_rules(password)


def test_oversized_password_fails_without_hashing() -> None:
    stored = parse_hash(hash_password("0123456789", log2_n=FAST))
    with pytest.raises(SignInFailed):
        verify_password(stored, "0" * 100_000)


def test_demo_accounts_hold_the_published_passwords() -> None:
    accounts = read_accounts(ROOT / "config" / "demo" / "desk-users.toml")
    assert accounts.demo is True
    staff, auditor = accounts.get("staff01"), accounts.get("audit01")
    assert staff is not None and staff.role == "staff"
    assert auditor is not None and auditor.role == "auditor"
    verify_password(staff.password, "demo-staff")
    verify_password(auditor.password, "demo-audit")
    with pytest.raises(SignInFailed):
        verify_password(staff.password, "demo-audit")
