"""C2SP signed notes, checkpoints, cosignatures and the witness request body (检查点与见证).

Formats, byte for byte, from:

- https://c2sp.org/signed-note (and golang.org/x/mod/sumdb/note): a text ending in a
  newline, a blank line, then lines ``— <key name> base64(key ID || signature)``.
  Ed25519 key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]; a verifier key
  is ``<name>+<8 hex key ID>+base64(0x01 || public key)``.
- https://c2sp.org/tlog-checkpoint: the note text ``<origin>\\n<size>\\n<base64 root>\\n``
  plus optional non-empty extension lines.
- https://c2sp.org/tlog-cosignature: a witness signs ``cosignature/v1\\ntime <t>\\n``
  followed by the checkpoint text, under signature type 0x04; the signature bytes are
  ``u64 big-endian timestamp || Ed25519 signature``.
- https://c2sp.org/tlog-witness: the ``add-checkpoint`` request body ``old <size>\\n``,
  up to 63 base64 proof lines, a blank line, then the signed checkpoint.

Everything here is pure. Parsers are strict (canonical base64 and decimals, no control
characters) and raise ``NoteError``; ``verify_*`` raise and never return False.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "MAX_ADD_CHECKPOINT_BODY",
    "MAX_PROOF_LINES",
    "MAX_SIGNATURES",
    "SIG_COSIGNATURE_V1",
    "SIG_ED25519",
    "AddCheckpoint",
    "Checkpoint",
    "Note",
    "NoteError",
    "Signature",
    "Verifier",
    "cosign",
    "cosignature_timestamp",
    "cosigner_verifier_key",
    "format_add_checkpoint",
    "key_id",
    "parse_add_checkpoint",
    "parse_checkpoint_body",
    "parse_note",
    "parse_signature_lines",
    "parse_verifier_key",
    "sign_note",
    "signature_line",
    "verifier_key",
    "verify_checkpoint",
    "verify_cosignature",
    "verify_note",
]

SIG_ED25519 = 0x01
"""signed-note signature type: plain Ed25519 over the note text (the log's own key)."""
SIG_COSIGNATURE_V1 = 0x04
"""signed-note signature type: timestamped Ed25519 witness cosignature (tlog-cosignature)."""

MAX_SIGNATURES = 100
"""Signature lines accepted in one note; the spec asks for at least 16, Go allows 100."""
MAX_PROOF_LINES = 63
"""tlog-witness: a client MUST NOT send more consistency proof lines than this."""
MAX_ADD_CHECKPOINT_BODY = 64 * 1024
"""Largest add-checkpoint body we parse; a real one is a few hundred bytes."""

_EM_DASH_PREFIX = "\u2014 "
_COSIGNATURE_HEADER = b"cosignature/v1\n"
_MAX_TIMESTAMP = 2**63 - 1
_MAX_TREE_SIZE = 2**64 - 1
_HASH_SIZE = 32
_ED25519_SIG_SIZE = 64
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SIG_TYPES = (SIG_ED25519, SIG_COSIGNATURE_V1)


class NoteError(ValueError):
    """A note, key, checkpoint or witness request is malformed or its signature fails."""


# --- small strict codecs ---------------------------------------------------------


def _b64decode(text: str, what: str) -> bytes:
    """Standard padded base64, canonical only: one encoding per value, so nothing is malleable."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise NoteError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decimal(text: str, what: str, limit: int) -> int:
    """ASCII decimal without leading zeroes; ``int()`` alone would accept ``+1``, ``1_0``, ``١``."""
    if not _DECIMAL.fullmatch(text) or not text.isascii():
        raise NoteError(f"{what} is not a decimal number without leading zeroes")
    value = int(text)
    if value > limit:
        raise NoteError(f"{what} is out of range")
    return value


def _check_name(name: str, what: str = "key name") -> None:
    # signed-note: non-empty, no Unicode spaces, no plus; never a control character.
    if not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise NoteError(f"{what} {name!r} is empty or holds a space, plus or control character")


def _check_text(raw: bytes, what: str) -> str:
    """Decode note text: UTF-8 with no ASCII control characters except newline."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError(f"{what} is not valid UTF-8") from None
    if _CONTROL.search(text):
        raise NoteError(f"{what} holds a control character")
    return text


def _raw_public_key(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


# --- keys ------------------------------------------------------------------------------


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """signed-note key ID: SHA-256(name || 0x0A || type || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()[
        :4
    ]


@dataclass(frozen=True)
class Verifier:
    """A trusted public key: the signer's name, its key ID, the key and its signature type.

    ``SIG_ED25519`` verifies a log's own signature over the note text;
    ``SIG_COSIGNATURE_V1`` verifies a witness's timestamped cosignature.
    """

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey = field(repr=False)
    sig_type: int = SIG_ED25519

    @classmethod
    def ed25519(cls, name: str, public_key: Ed25519PublicKey) -> Verifier:
        """Verifier for a log (or any plain) Ed25519 note signer."""
        _check_name(name)
        raw = _raw_public_key(public_key)
        return cls(name, key_id(name, SIG_ED25519, raw), public_key, SIG_ED25519)

    @classmethod
    def cosigner(cls, name: str, public_key: Ed25519PublicKey) -> Verifier:
        """Verifier for a witness's cosignature/v1 signatures."""
        _check_name(name)
        raw = _raw_public_key(public_key)
        return cls(name, key_id(name, SIG_COSIGNATURE_V1, raw), public_key, SIG_COSIGNATURE_V1)

    def vkey(self) -> str:
        """This key in C2SP verifier-key form (``parse_verifier_key`` reads it back)."""
        raw = bytes([self.sig_type]) + _raw_public_key(self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{_b64encode(raw)}"

    def verify(self, text: bytes, sig: bytes) -> None:
        """Check ``sig`` (the bytes after the key ID) over note ``text``; raise ``NoteError``."""
        if self.sig_type == SIG_COSIGNATURE_V1:
            if len(sig) != 8 + _ED25519_SIG_SIZE:
                raise NoteError(f"cosignature from {self.name} has the wrong length")
            timestamp = int.from_bytes(sig[:8], "big")
            if timestamp > _MAX_TIMESTAMP:
                raise NoteError(f"cosignature from {self.name} has an impossible timestamp")
            message = _cosigned_message(text, timestamp)
            sig = sig[8:]
        else:
            if len(sig) != _ED25519_SIG_SIZE:
                raise NoteError(f"signature from {self.name} has the wrong length")
            message = text
        try:
            self.public_key.verify(sig, message)
        except InvalidSignature:
            raise NoteError(f"signature from {self.name}+{self.key_id.hex()} is invalid") from None


def verifier_key(name: str, pub: Ed25519PublicKey) -> str:
    """C2SP verifier key ``<name>+<hex key ID>+base64(0x01 || pub)`` for an Ed25519 signer."""
    return Verifier.ed25519(name, pub).vkey()


def cosigner_verifier_key(name: str, pub: Ed25519PublicKey) -> str:
    """Verifier key of a cosignature/v1 witness: type byte 0x04 (tlog-cosignature)."""
    return Verifier.cosigner(name, pub).vkey()


def parse_verifier_key(text: str) -> Verifier:
    """Read ``<name>+<8 hex>+<base64 type||key>``; the key ID must match (types 0x01, 0x04)."""
    # Names and key IDs hold no '+', but base64 may: split off the first two fields only.
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("verifier key must be <name>+<key id>+<key>")
    name, hex_id, b64 = parts
    _check_name(name)
    if len(hex_id) != 8 or not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise NoteError("verifier key ID must be 8 lowercase hex digits")
    raw = _b64decode(b64, "verifier key")
    if len(raw) != 1 + 32:
        raise NoteError("verifier key must be a type byte and a 32-byte Ed25519 key")
    if raw[0] not in _SIG_TYPES:
        raise NoteError(f"verifier key type 0x{raw[0]:02x} is not supported")
    if key_id(name, raw[0], raw[1:]) != bytes.fromhex(hex_id):
        raise NoteError("verifier key ID does not match the name and key")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError:
        raise NoteError("verifier key is not an Ed25519 public key") from None
    return Verifier(name, bytes.fromhex(hex_id), public_key, raw[0])


# --- notes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: who (name, key ID) and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    sig: bytes

    def line(self) -> str:
        """The note signature line, newline included."""
        return f"{_EM_DASH_PREFIX}{self.name} {_b64encode(self.key_id + self.sig)}\n"


@dataclass(frozen=True)
class Note:
    """A note's text (final newline included) and its signatures.

    From ``parse_note`` these are all the signatures found; from ``verify_note`` only
    those that verified against a trusted key, in note order.
    """

    body: bytes
    signatures: tuple[Signature, ...]


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(_EM_DASH_PREFIX):
        raise NoteError("signature line does not start with an em dash and a space")
    name, sep, b64 = line[len(_EM_DASH_PREFIX) :].partition(" ")
    if not sep:
        raise NoteError("signature line has no signature after the key name")
    _check_name(name)
    raw = _b64decode(b64, "signature")
    if len(raw) < 5:
        raise NoteError("signature is too short to hold a key ID and a signature")
    return Signature(name, raw[:4], raw[4:])


def parse_signature_lines(text: bytes) -> tuple[Signature, ...]:
    """Parse one or more newline-terminated signature lines (e.g. a witness's response body)."""
    decoded = _check_text(text, "signature block")
    if not decoded.endswith("\n"):
        raise NoteError("signature block does not end with a newline")
    lines = decoded[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    return tuple(_parse_signature_line(line) for line in lines)


def parse_note(text: bytes | str) -> Note:
    """Split a signed note into text and signatures without verifying anything."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    _check_text(raw, "note")
    # The text may hold blank lines itself; signatures follow the *last* blank line.
    split = raw.rfind(b"\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    body, block = raw[: split + 1], raw[split + 2 :]
    if not block:
        raise NoteError("note has no signatures")
    return Note(body, parse_signature_lines(block))


def verify_note(text: bytes | str, verifiers: Iterable[Verifier], *, min_verified: int = 1) -> Note:
    """Parse a note and check it against trusted keys; return it with the verified signatures.

    Signatures from unknown (name, key ID) pairs are ignored, as signed-note requires.
    Any signature from a known key that fails rejects the whole note, and at least
    ``min_verified`` distinct trusted keys must have signed.
    """
    note = parse_note(text)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[Signature] = []
    signed_by: set[tuple[str, bytes]] = set()
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        verifier.verify(note.body, sig.sig)
        if (sig.name, sig.key_id) not in signed_by:
            signed_by.add((sig.name, sig.key_id))
            verified.append(sig)
    if len(signed_by) < max(min_verified, 1):
        if not signed_by:
            raise NoteError("note is not signed by any trusted key")
        raise NoteError(f"note is signed by {len(signed_by)} trusted keys, {min_verified} needed")
    return Note(note.body, tuple(verified))


def signature_line(body: bytes, name: str, key: Ed25519PrivateKey) -> str:
    """The Ed25519 (type 0x01) signature line for note text ``body``."""
    _check_name(name)
    _check_body(body)
    kid = key_id(name, SIG_ED25519, _raw_public_key(key.public_key()))
    return Signature(name, kid, key.sign(body)).line()


def sign_note(body: bytes, name: str, key: Ed25519PrivateKey) -> bytes:
    """Sign note text ``body`` (ending in a newline): ``body || "\\n" || signature line``.

    More signatures, such as cosignatures, are added by appending their lines.
    """
    return body + b"\n" + signature_line(body, name, key).encode("utf-8")


def _check_body(body: bytes) -> None:
    text = _check_text(body, "note text")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")


# --- checkpoints -----------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint note text: the log's origin, tree size and root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Validate on construction so body() can never emit something parse rejects.
        if not self.origin or any(c < " " for c in self.origin):
            raise NoteError("checkpoint origin must be non-empty without control characters")
        try:
            "".join((self.origin, *self.extensions)).encode("utf-8")
        except UnicodeEncodeError:
            raise NoteError("checkpoint text must be valid Unicode") from None
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError("checkpoint size is out of range")
        if len(self.root) != _HASH_SIZE:
            raise NoteError("checkpoint root must be a 32-byte hash")
        for ext in self.extensions:
            if not ext or any(c < " " for c in ext):
                raise NoteError("checkpoint extension lines must be non-empty single lines")

    def body(self) -> bytes:
        """The note text to sign: origin, size, base64 root, extensions; each line ends in \\n."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return ("\n".join(lines) + "\n").encode("utf-8")


def parse_checkpoint_body(body: bytes) -> Checkpoint:
    """Parse checkpoint note text strictly: three or more non-empty lines, canonical fields."""
    text = _check_text(body, "checkpoint")
    if not text.endswith("\n"):
        raise NoteError("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, size and root lines")
    if any(not line for line in lines):
        raise NoteError("checkpoint lines must not be empty")
    origin, size_text, root_text, *extensions = lines
    size = _decimal(size_text, "checkpoint size", _MAX_TREE_SIZE)
    root = _b64decode(root_text, "checkpoint root")
    if len(root) != _HASH_SIZE:
        raise NoteError("checkpoint root must be a 32-byte hash")
    return Checkpoint(origin, size, root, tuple(extensions))


def verify_checkpoint(
    text: bytes | str, verifier: Verifier, *, origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint by the log key ``verifier`` and parse its body.

    ``origin`` (if given) must match; other signatures (cosignatures) are ignored here.
    """
    note = verify_note(text, [verifier])
    checkpoint = parse_checkpoint_body(note.body)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint, note


# --- cosignatures ----------------------------------------------------------------------


def _cosigned_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    return _COSIGNATURE_HEADER + b"time %d\n" % timestamp + checkpoint_body


def cosign(checkpoint_body: bytes, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    """A witness's cosignature/v1 signature line over a checkpoint, made at POSIX ``timestamp``."""
    _check_name(name, "cosigner name")
    parse_checkpoint_body(checkpoint_body)  # a witness only vouches for real checkpoints
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp is out of range")
    kid = key_id(name, SIG_COSIGNATURE_V1, _raw_public_key(key.public_key()))
    sig = key.sign(_cosigned_message(checkpoint_body, timestamp))
    return Signature(name, kid, timestamp.to_bytes(8, "big") + sig).line()


def cosignature_timestamp(signature: Signature) -> int:
    """The POSIX time a cosignature/v1 claims, read without verifying it."""
    if len(signature.sig) != 8 + _ED25519_SIG_SIZE:
        raise NoteError("not an Ed25519 cosignature/v1 signature")
    return int.from_bytes(signature.sig[:8], "big")


def verify_cosignature(
    checkpoint_body: bytes,
    signature: Signature | str,
    verifier: Verifier,
    *,
    not_after: int | None = None,
) -> int:
    """Check a witness cosignature over a checkpoint; return its timestamp.

    ``signature`` is a parsed ``Signature`` or one signature line. ``not_after``
    (POSIX seconds) rejects timestamps in the future, which the spec permits.
    """
    if verifier.sig_type != SIG_COSIGNATURE_V1:
        raise NoteError("verifier is not a cosignature/v1 key")
    if isinstance(signature, str):
        signature = _parse_signature_line(signature.removesuffix("\n"))
    if (signature.name, signature.key_id) != (verifier.name, verifier.key_id):
        raise NoteError("cosignature is not from this cosigner key")
    parse_checkpoint_body(checkpoint_body)
    verifier.verify(checkpoint_body, signature.sig)
    timestamp = cosignature_timestamp(signature)
    if not_after is not None and timestamp > not_after:
        raise NoteError("cosignature timestamp is in the future")
    return timestamp


# --- tlog-witness add-checkpoint ---------------------------------------------------------


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed tlog-witness ``add-checkpoint`` request: old size, consistency proof, note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """Build the add-checkpoint request body a log sends to a witness."""
    if not 0 <= old_size <= _MAX_TREE_SIZE:
        raise NoteError("old size is out of range")
    if len(proof) > MAX_PROOF_LINES:
        raise NoteError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    if any(len(p) != _HASH_SIZE for p in proof):
        raise NoteError("consistency proof hashes must be 32 bytes")
    lines = [f"old {old_size}\n", *(_b64encode(p) + "\n" for p in proof), "\n"]
    body = "".join(lines).encode("ascii") + note
    if len(body) > MAX_ADD_CHECKPOINT_BODY:
        raise NoteError("add-checkpoint body would exceed the size limit")
    return body


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint body strictly; the note inside is returned unverified.

    The witness still checks the note's signature, ``old_size <= checkpoint size``
    and the proof; those answers (403, 400, 409, 422) need its own state.
    """
    if len(body) > MAX_ADD_CHECKPOINT_BODY:
        raise NoteError(f"add-checkpoint body is larger than {MAX_ADD_CHECKPOINT_BODY} bytes")
    pos = body.find(b"\n")
    if pos < 0:
        raise NoteError("add-checkpoint body has no old size line")
    first = body[:pos]
    if not first.startswith(b"old "):
        raise NoteError("add-checkpoint body must start with 'old <size>'")
    try:
        size_text = first[4:].decode("ascii")
    except UnicodeDecodeError:
        raise NoteError("old size is not ASCII") from None
    old_size = _decimal(size_text, "old size", _MAX_TREE_SIZE)
    proof: list[bytes] = []
    pos += 1
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            raise NoteError("add-checkpoint body has no blank line before the checkpoint")
        line = body[pos:end]
        pos = end + 1
        if not line:
            break
        if len(proof) == MAX_PROOF_LINES:
            raise NoteError(f"more than {MAX_PROOF_LINES} consistency proof lines")
        try:
            line_text = line.decode("ascii")
        except UnicodeDecodeError:
            raise NoteError("consistency proof line is not base64") from None
        digest = _b64decode(line_text, "consistency proof line")
        if len(digest) != _HASH_SIZE:
            raise NoteError("consistency proof line is not a 32-byte hash")
        proof.append(digest)
    note = body[pos:]
    if not note:
        raise NoteError("add-checkpoint body has no checkpoint")
    return AddCheckpoint(old_size, tuple(proof), note)
