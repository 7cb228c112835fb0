"""Signed notes, checkpoints, cosignatures and add-checkpoint bodies (C2SP), with known answers."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.note import (
    MAX_ADD_CHECKPOINT_BODY,
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    AddCheckpoint,
    Checkpoint,
    NoteError,
    Signature,
    Verifier,
    cosign,
    cosignature_timestamp,
    cosigner_verifier_key,
    format_add_checkpoint,
    parse_add_checkpoint,
    parse_checkpoint_body,
    parse_note,
    parse_signature_lines,
    parse_verifier_key,
    sign_note,
    verifier_key,
    verify_checkpoint,
    verify_cosignature,
    verify_note,
)

# --- known answers: golang.org/x/mod/sumdb/note (note.go docs and note_test.go) -----------

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
    "otpRZb6KE6RyyBwJnAM=\n"
).encode()
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWL"
    "ox33WWd1RvMc+QQ=\n"
).encode()

# tlog-checkpoint / tlog-cosignature / tlog-witness spec examples.
SOFA_BODY = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_LOG_SIG = (
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Z"
    "hcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SOFA_WITNESS_SIG = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlr"
    "DJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
WITNESS_REQUEST = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    + SOFA_BODY.decode()
    + "\n"
    + SOFA_LOG_SIG
    + "\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+"
    "49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
).encode()

ROOT = bytes(range(32))
ORIGIN = "tongban/node-a/audit"


def peter_key() -> Ed25519PrivateKey:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert seed[0] == SIG_ED25519
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


@pytest.fixture
def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def witness_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_verifier_key_known_answer() -> None:
    key = peter_key()
    assert verifier_key("PeterNeumann", key.public_key()) == PETER_VKEY
    v = parse_verifier_key(PETER_VKEY)
    assert (v.name, v.key_id.hex(), v.sig_type) == ("PeterNeumann", "c74f20a3", SIG_ED25519)
    assert v.vkey() == PETER_VKEY


def test_sign_note_known_answer() -> None:
    # Ed25519 is deterministic, so the Go reference output must come out byte for byte.
    assert sign_note(TEXT, "PeterNeumann", peter_key()) == TEXT + b"\n" + PETER_SIG


def test_verify_doubly_signed_note_from_the_go_docs() -> None:
    msg = TEXT + b"\n" + PETER_SIG + ENOCH_SIG
    peter, enoch = parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)
    only_peter = verify_note(msg, [peter])
    assert only_peter.body == TEXT
    assert [s.name for s in only_peter.signatures] == ["PeterNeumann"]
    both = verify_note(msg, [peter, enoch], min_verified=2)
    assert [(s.name, s.key_id.hex()) for s in both.signatures] == [
        ("PeterNeumann", "c74f20a3"),
        ("EnochRoot", "af0cfe78"),
    ]
    assert len(parse_note(msg).signatures) == 2


@pytest.mark.parametrize(
    ("vkey", "sig_type", "key_id"),
    [
        # transparency-dev/formats note_cosigv1_test.go
        ("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", 0x04, "da77ade7"),
        ("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", 0x01, "7997405c"),
    ],
)
def test_parse_verifier_key_known_answers(vkey: str, sig_type: int, key_id: str) -> None:
    v = parse_verifier_key(vkey)
    assert (v.sig_type, v.key_id.hex()) == (sig_type, key_id)
    assert v.vkey() == vkey


def test_every_mangled_verifier_key_is_rejected() -> None:
    # As x/mod's TestNewVerifier: every proper substring and every single-byte bump fails.
    b = PETER_VKEY
    for i in range(len(b)):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(NoteError):
                    parse_verifier_key(b[i:j])
    for i in range(len(b)):
        with pytest.raises(NoteError):
            parse_verifier_key(b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :])


@pytest.mark.parametrize(
    "vkey",
    [
        # From x/mod: wrong key length and unknown algorithm, each with a matching key ID.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
        "bananas.sigstore.dev+12344556",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "",
    ],
)
def test_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier_key(vkey)


# --- signed notes -------------------------------------------------------------------------


def test_round_trip_and_unknown_signers_are_ignored(
    log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey
) -> None:
    body = Checkpoint(ORIGIN, 7, ROOT).body()
    msg = sign_note(body, ORIGIN, log_key)
    stranger = sign_note(body, "stranger.example", witness_key).split(b"\n\n")[1]
    msg_with_stranger = msg + stranger
    log = Verifier.ed25519(ORIGIN, log_key.public_key())
    note = verify_note(msg_with_stranger, [log])
    assert note.body == body
    assert [s.name for s in note.signatures] == [ORIGIN]
    # Same name, another key: a different key ID, so just an unknown signer.
    impostor = Verifier.ed25519(ORIGIN, witness_key.public_key())
    with pytest.raises(NoteError, match="not signed by any trusted key"):
        verify_note(msg, [impostor])


def test_tampered_body_or_signature_fails(log_key: Ed25519PrivateKey) -> None:
    body = Checkpoint(ORIGIN, 7, ROOT).body()
    msg = sign_note(body, ORIGIN, log_key)
    log = Verifier.ed25519(ORIGIN, log_key.public_key())
    with pytest.raises(NoteError, match="invalid"):
        verify_note(msg.replace(b"\n7\n", b"\n8\n"), [log])
    sig = parse_note(msg).signatures[0]
    bad = bytearray(sig.sig)
    bad[10] ^= 1
    forged = body + b"\n" + Signature(sig.name, sig.key_id, bytes(bad)).line().encode()
    with pytest.raises(NoteError, match="invalid"):
        verify_note(forged, [log])


def test_one_bad_signature_from_a_known_key_rejects_the_note(log_key: Ed25519PrivateKey) -> None:
    body = Checkpoint(ORIGIN, 7, ROOT).body()
    msg = sign_note(body, ORIGIN, log_key)
    sig = parse_note(msg).signatures[0]
    bad = Signature(sig.name, sig.key_id, bytes(64)).line().encode()
    with pytest.raises(NoteError, match="invalid"):
        verify_note(msg + bad, [Verifier.ed25519(ORIGIN, log_key.public_key())])


def test_min_verified_counts_distinct_keys(log_key: Ed25519PrivateKey) -> None:
    msg = sign_note(TEXT, ORIGIN, log_key)
    repeated = msg + msg.split(b"\n\n")[1]
    log = Verifier.ed25519(ORIGIN, log_key.public_key())
    assert len(verify_note(repeated, [log]).signatures) == 1
    with pytest.raises(NoteError, match="2 needed"):
        verify_note(repeated, [log], min_verified=2)


def test_note_text_may_hold_blank_lines() -> None:
    key = peter_key()
    body = b"first\n\nsecond\n"
    note = verify_note(sign_note(body, "PeterNeumann", key), [parse_verifier_key(PETER_VKEY)])
    assert note.body == body


MALFORMED = {
    "no blank line": TEXT + PETER_SIG,
    "nothing after blank line": TEXT + b"\n",
    "only text": TEXT,
    "no final newline": TEXT + b"\n" + PETER_SIG[:-1],
    "hyphen, not em dash": TEXT + b"\n" + PETER_SIG.replace("\u2014".encode(), b"-"),
    "en dash": TEXT + b"\n" + PETER_SIG.replace("\u2014".encode(), "\u2013".encode()),
    "no space after dash": TEXT + b"\n" + PETER_SIG.replace("\u2014 ".encode(), "\u2014".encode()),
    "bad base64": TEXT + b"\n" + PETER_SIG.replace(b"x08go", b"x08g!"),
    "base64 without padding": TEXT + b"\n" + PETER_SIG.replace(b"AM=\n", b"AM\n"),
    "non-canonical base64": TEXT + b"\n" + PETER_SIG.replace(b"AM=\n", b"AN=\n"),
    "name with a space": TEXT + b"\n" + PETER_SIG.replace(b"PeterNeumann", b"Peter Neumann"),
    "name with a plus": TEXT + b"\n" + PETER_SIG.replace(b"PeterNeumann", b"Peter+Neumann"),
    "signature too short": TEXT + "\n\u2014 PeterNeumann AAAAAA==\n".encode(),
    "control character": b"\x01" + TEXT + b"\n" + PETER_SIG,
    "carriage return": TEXT.replace(b"\n", b"\r\n", 1) + b"\n" + PETER_SIG,
    "invalid UTF-8": b"\xff" + TEXT + b"\n" + PETER_SIG,
    "trailing junk line": TEXT + b"\n" + PETER_SIG + b"Unexpected line.\n",
    "too many signatures": TEXT + b"\n" + PETER_SIG * 101,
}


@pytest.mark.parametrize("msg", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_notes_raise(msg: bytes) -> None:
    with pytest.raises(NoteError):
        verify_note(msg, [parse_verifier_key(PETER_VKEY)])


def test_sixteen_signatures_are_accepted() -> None:
    note = parse_note(TEXT + b"\n" + PETER_SIG + ENOCH_SIG * 15)
    assert len(note.signatures) == 16


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (b"no newline", "n"),
        (b"ok\n", "bad name"),
        (b"ok\n", "a+b"),
        (b"ok\n", ""),
        (b"\x00\n", "n"),
    ],
)
def test_sign_note_refuses_what_it_could_not_parse(body: bytes, name: str) -> None:
    with pytest.raises(NoteError):
        sign_note(body, name, peter_key())


# --- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_spec_example() -> None:
    cp = parse_checkpoint_body(SOFA_BODY)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert cp.body() == SOFA_BODY


def test_checkpoint_with_extensions_round_trips() -> None:
    cp = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext two"))
    assert (
        cp.body() == f"{ORIGIN}\n0\n{base64.b64encode(ROOT).decode()}\next one\next two\n".encode()
    )
    assert parse_checkpoint_body(cp.body()) == cp


R = base64.b64encode(ROOT).decode()
BAD_CHECKPOINTS = {
    "two lines": "o\n1\n",
    "no final newline": f"o\n1\n{R}",
    "empty origin": f"\n1\n{R}\n",
    "leading zero": f"o\n042\n{R}\n",
    "plus sign": f"o\n+1\n{R}\n",
    "underscore": f"o\n1_0\n{R}\n",
    "space": f"o\n 1\n{R}\n",
    "arabic digits": f"o\n\u0661\n{R}\n",
    "negative": f"o\n-1\n{R}\n",
    "too big": f"o\n{2**64}\n{R}\n",
    "short root": "o\n1\nAAAA\n",
    "url-safe root": f"o\n1\n{base64.urlsafe_b64encode(bytes([251] * 32)).decode()}\n",
    "unpadded root": f"o\n1\n{R.rstrip('=')}\n",
    "empty extension": f"o\n1\n{R}\n\n",
    "empty line between": f"o\n1\n{R}\n\next\n",
    "tab": f"o\t\n1\n{R}\n",
}


@pytest.mark.parametrize("body", BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS.keys())
def test_bad_checkpoint_bodies(body: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint_body(body.encode())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "size": 1, "root": ROOT},
        {"origin": "a\nb", "size": 1, "root": ROOT},
        {"origin": "o", "size": -1, "root": ROOT},
        {"origin": "o", "size": 2**64, "root": ROOT},
        {"origin": "o", "size": 1, "root": ROOT[:31]},
        {"origin": "o", "size": 1, "root": ROOT, "extensions": ("",)},
        {"origin": "o", "size": 1, "root": ROOT, "extensions": ("a\nb",)},
    ],
)
def test_checkpoint_refuses_bad_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(NoteError):
        Checkpoint(**kwargs)  # type: ignore[arg-type]


line = st.text(
    st.characters(exclude_categories=["Cs"], min_codepoint=0x20), min_size=1, max_size=40
)


@given(
    origin=line,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(line, max_size=3).map(tuple),
)
def test_checkpoint_round_trip_property(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert parse_checkpoint_body(cp.body()) == cp


def test_verify_checkpoint(log_key: Ed25519PrivateKey) -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT)
    msg = sign_note(cp.body(), ORIGIN, log_key)
    log = Verifier.ed25519(ORIGIN, log_key.public_key())
    got, note = verify_checkpoint(msg, log, origin=ORIGIN)
    assert got == cp
    assert note.body == cp.body()
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(msg, log, origin="tongban/node-b/audit")


# --- cosignatures ----------------------------------------------------------------------------


def test_cosignature_spec_example_timestamps() -> None:
    (sig,) = parse_signature_lines(SOFA_WITNESS_SIG.encode())
    assert sig.name == "witness.example.com/w1"
    assert cosignature_timestamp(sig) == 1679315147  # "time 1679315147" in tlog-cosignature
    tdev = Signature(
        "w",
        b"",
        base64.b64decode(
            "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
        )[4:],
    )
    assert cosignature_timestamp(tdev) == 1727964367  # transparency-dev/formats test


def test_cosign_round_trip(log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey) -> None:
    body = Checkpoint(ORIGIN, 42, ROOT).body()
    signed = sign_note(body, ORIGIN, log_key)
    line = cosign(body, "witness.example/w1", witness_key, 1_700_000_000)
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")

    vkey = cosigner_verifier_key("witness.example/w1", witness_key.public_key())
    witness = parse_verifier_key(vkey)
    assert witness.sig_type == SIG_COSIGNATURE_V1
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    assert verify_cosignature(body, line, witness) == 1_700_000_000
    (parsed,) = parse_signature_lines(line.encode())
    assert verify_cosignature(body, parsed, witness, not_after=1_700_000_000) == 1_700_000_000

    # A tlog-witness client appends the response lines to its note and verifies the lot.
    log = Verifier.ed25519(ORIGIN, log_key.public_key())
    note = verify_note(signed + line.encode(), [log, witness], min_verified=2)
    assert [s.name for s in note.signatures] == [ORIGIN, "witness.example/w1"]


def test_cosignature_failures(log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey) -> None:
    body = Checkpoint(ORIGIN, 42, ROOT).body()
    line = cosign(body, "w", witness_key, 1000)
    witness = Verifier.cosigner("w", witness_key.public_key())
    (sig,) = parse_signature_lines(line.encode())

    with pytest.raises(NoteError, match="invalid"):
        verify_cosignature(Checkpoint(ORIGIN, 43, ROOT).body(), line, witness)
    moved = Signature(sig.name, sig.key_id, (1001).to_bytes(8, "big") + sig.sig[8:])
    with pytest.raises(NoteError, match="invalid"):
        verify_cosignature(body, moved, witness)
    with pytest.raises(NoteError, match="future"):
        verify_cosignature(body, sig, witness, not_after=999)
    with pytest.raises(NoteError, match="not from this cosigner"):
        verify_cosignature(body, sig, Verifier.cosigner("w", log_key.public_key()))
    with pytest.raises(NoteError, match="not a cosignature"):
        verify_cosignature(body, sig, Verifier.ed25519("w", witness_key.public_key()))
    # The key ID commits to type 0x04, so a plain-Ed25519 verifier never even matches it.
    plain = Verifier.ed25519("w", witness_key.public_key())
    assert plain.key_id != witness.key_id
    with pytest.raises(NoteError, match="not signed by any trusted key"):
        verify_note(body + b"\n" + line.encode(), [plain])


@pytest.mark.parametrize("timestamp", [-1, 2**63])
def test_cosign_timestamp_range(witness_key: Ed25519PrivateKey, timestamp: int) -> None:
    with pytest.raises(NoteError):
        cosign(Checkpoint(ORIGIN, 1, ROOT).body(), "w", witness_key, timestamp)


def test_cosign_refuses_a_non_checkpoint(witness_key: Ed25519PrivateKey) -> None:
    with pytest.raises(NoteError):
        cosign(b"just a note\n", "w", witness_key, 1)


# --- tlog-witness add-checkpoint --------------------------------------------------------------


def test_add_checkpoint_spec_example_round_trips() -> None:
    req = parse_add_checkpoint(WITNESS_REQUEST)
    assert req.old_size == 20852014
    assert len(req.proof) == 4 and all(len(p) == 32 for p in req.proof)
    assert parse_note(req.note).body == SOFA_BODY
    assert format_add_checkpoint(req.old_size, list(req.proof), req.note) == WITNESS_REQUEST


@given(
    old_size=st.integers(0, 2**64 - 1),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=63),
    note=st.binary(min_size=1, max_size=300),
)
def test_add_checkpoint_round_trip_property(old_size: int, proof: list[bytes], note: bytes) -> None:
    body = format_add_checkpoint(old_size, proof, note)
    assert parse_add_checkpoint(body) == AddCheckpoint(old_size, tuple(proof), note)


H = base64.b64encode(ROOT).decode()
NOTE = "o\n1\n" + H + "\n\n\u2014 o AAAAAAAA\n"
BAD_REQUESTS = {
    "empty": "",
    "no newline": "old 1",
    "wrong keyword": f"Old 1\n\n{NOTE}",
    "two spaces": f"old  1\n\n{NOTE}",
    "leading zero": f"old 01\n\n{NOTE}",
    "negative": f"old -1\n\n{NOTE}",
    "too big": f"old {2**64}\n\n{NOTE}",
    "no blank line": f"old 1\n{H}\n",
    "no checkpoint": f"old 1\n{H}\n\n",
    "short hash": f"old 1\nAAAA\n\n{NOTE}",
    "bad base64": f"old 1\n{H[:-2]}!=\n\n{NOTE}",
    "crlf": f"old 1\r\n\r\n{NOTE}",
    "64 proof lines": "old 1\n" + f"{H}\n" * 64 + f"\n{NOTE}",
    "over 64 KiB": "old 1\n\n" + "x" * MAX_ADD_CHECKPOINT_BODY,
}


@pytest.mark.parametrize("body", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_add_checkpoint_bodies(body: str) -> None:
    with pytest.raises(NoteError):
        parse_add_checkpoint(body.encode())


def test_63_proof_lines_are_accepted() -> None:
    req = parse_add_checkpoint(("old 1\n" + f"{H}\n" * 63 + f"\n{NOTE}").encode())
    assert len(req.proof) == 63


@pytest.mark.parametrize(("old_size", "proof"), [(-1, []), (1, [ROOT] * 64), (1, [ROOT[:31]])])
def test_format_add_checkpoint_refuses_bad_input(old_size: int, proof: list[bytes]) -> None:
    with pytest.raises(NoteError):
        format_add_checkpoint(old_size, proof, b"note\n")
