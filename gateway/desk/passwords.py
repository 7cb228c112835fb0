"""Desk password hashes: scrypt with a per-user salt, parameters kept in the hash string.

A stored hash reads ``$scrypt$ln=16,r=8,p=1$<salt>$<key>`` (salt and key unpadded
base64url), so the cost can be raised for new accounts without breaking old ones: every
hash carries what is needed to check it. The default costs 64 MiB and about a quarter of
a second on one core — expensive for an offline guesser, and affordable for the few
sign-ins a hall desk sees, with the lockout (``lockout.py``) bounding online guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from gateway.desk.errors import SignInFailed
from gateway.encoding import b64u_decode, b64u_encode

DEFAULT_LOG2_N = 16
"""scrypt N = 2**16 with r = 8: 64 MiB of memory per hash."""
MIN_LOG2_N = 10
"""The floor a stored hash may use (tests use small costs; the loader refuses less)."""
MAX_LOG2_N = 20
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
"""Longer input is refused before hashing: scrypt's cost must not grow with the input."""

_HASH_RE = re.compile(
    r"\$scrypt\$ln=(?P<ln>[0-9]{1,2}),r=(?P<r>[0-9]{1,2}),p=(?P<p>[0-9]{1,2})"
    r"\$(?P<salt>[A-Za-z0-9_-]{16,64})\$(?P<key>[A-Za-z0-9_-]{43})"
)


@dataclass(frozen=True)
class ScryptHash:
    """A parsed stored hash."""

    log2_n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def encode(self) -> str:
        return (
            f"$scrypt$ln={self.log2_n},r={self.r},p={self.p}"
            f"${b64u_encode(self.salt)}${b64u_encode(self.key)}"
        )

    @property
    def maxmem(self) -> int:
        """Memory scrypt needs for these parameters, with room for its own overhead."""
        return 128 * self.r * (1 << self.log2_n) * (self.p + 1) + (1 << 20)


def _check_params(log2_n: int, r: int, p: int) -> None:
    if not MIN_LOG2_N <= log2_n <= MAX_LOG2_N or not 1 <= r <= 32 or not 1 <= p <= 4:
        raise ValueError(f"scrypt parameters out of range (ln {MIN_LOG2_N}..{MAX_LOG2_N})")


def parse_hash(text: str) -> ScryptHash:
    """Parse a stored hash; raises ``ValueError`` saying what is wrong with it."""
    m = _HASH_RE.fullmatch(text)
    if m is None:
        raise ValueError("not a $scrypt$ln=..,r=..,p=..$salt$key hash")
    log2_n, r, p = int(m["ln"]), int(m["r"]), int(m["p"])
    _check_params(log2_n, r, p)
    try:
        salt, key = b64u_decode(m["salt"]), b64u_decode(m["key"])
    except ValueError as exc:
        raise ValueError("salt or key is not base64url") from exc
    if len(key) != KEY_BYTES:
        raise ValueError("the key must be 32 bytes")
    return ScryptHash(log2_n=log2_n, r=r, p=p, salt=salt, key=key)


def check_password_rules(password: str) -> None:
    """Refuse passwords a desk must not accept; raises ``ValueError`` with the rule."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a desk password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"a desk password has at most {MAX_PASSWORD} characters")


def _derive(password: str, params: ScryptHash) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=params.salt,
        n=1 << params.log2_n,
        r=params.r,
        p=params.p,
        maxmem=params.maxmem,
        dklen=KEY_BYTES,
    )


def hash_password(password: str, *, log2_n: int = DEFAULT_LOG2_N, r: int = 8, p: int = 1) -> str:
    """A new stored hash with a fresh random salt (CPU-heavy: call off the event loop)."""
    check_password_rules(password)
    _check_params(log2_n, r, p)  # the same bounds the loader enforces
    params = ScryptHash(log2_n=log2_n, r=r, p=p, salt=secrets.token_bytes(SALT_BYTES), key=b"")
    key = _derive(password, params)
    return ScryptHash(log2_n, r, p, params.salt, key).encode()


def verify_password(stored: ScryptHash, password: str) -> None:
    """Raise ``SignInFailed`` unless ``password`` matches (CPU-heavy: off the event loop).

    The comparison is constant-time; a too-long password fails without hashing.
    """
    if len(password) > MAX_PASSWORD:
        raise SignInFailed()
    if not hmac.compare_digest(_derive(password, stored), stored.key):
        raise SignInFailed()


DUMMY_HASH = ScryptHash(
    log2_n=DEFAULT_LOG2_N, r=8, p=1, salt=b"tongban-desk-dum", key=bytes(KEY_BYTES)
)
"""Checked against when the account does not exist (``Accounts.stand_in`` gives it the
costliest account's parameters), so a wrong user name costs the time of a wrong password."""
