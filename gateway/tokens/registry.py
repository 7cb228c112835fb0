"""Partner token keys: who owns which ``kid`` and which algorithm it is allowed (SPEC 2).

The registry is the only source of the algorithm a token is checked with: a token's
own ``alg`` header is compared against it, never trusted to choose. Keys are checked
when they are registered (P-256 for ES256, Ed25519 for EdDSA), so a wrong pairing is
a start-up error and not something the request path has to think about.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeVar, overload

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.encoding import b64u_encode

Algorithm: TypeAlias = Literal["ES256", "EdDSA"]
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_T = TypeVar("_T")

ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "EdDSA")
"""The only JOSE algorithms a request token may use (SPEC 2)."""


def alg_for_key(public_key: object) -> Algorithm:
    """Name the one algorithm this key may sign with; ``ValueError`` for any other key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return "ES256"
        raise ValueError(f"EC key on {public_key.curve.name}: ES256 needs P-256")
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ValueError(f"{type(public_key).__name__} is not a P-256 or Ed25519 key")


def _jwk_members(public_key: PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of the key's JWK, and nothing else."""
    alg_for_key(public_key)  # rejects curves other than P-256 before we encode them
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        numbers = public_key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            # RFC 7518 6.2.1.2: coordinates are the full 32 bytes, leading zeros kept.
            "x": b64u_encode(numbers.x.to_bytes(32, "big")),
            "y": b64u_encode(numbers.y.to_bytes(32, "big")),
        }
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64u_encode(raw)}


def jwk_thumbprint(public_key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the ``kid`` of a node's token key."""
    members = _jwk_members(public_key)
    # RFC 7638 3.3: required members only, sorted, no whitespace; all values are ASCII.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64u_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(public_key: PublicKey, kid: str, alg: str) -> dict[str, str]:
    """The public JWK published at ``/.well-known/tongban/keys`` (with ``use: sig``)."""
    if alg != alg_for_key(public_key):
        raise ValueError(f"alg {alg} does not fit a {alg_for_key(public_key)} key")
    return {**_jwk_members(public_key), "kid": kid, "alg": alg, "use": "sig"}


@dataclass(frozen=True)
class RegisteredKey:
    """A partner's request-token public key; ``alg`` is the only algorithm it verifies."""

    kid: str
    partner: str
    alg: Algorithm
    public_key: PublicKey

    def __post_init__(self) -> None:
        if not self.kid:
            raise ValueError(f"partner {self.partner}: a key needs a non-empty kid")
        if self.alg not in ALGORITHMS:
            raise ValueError(f"key {self.kid}: alg must be ES256 or EdDSA, not {self.alg!r}")
        actual = alg_for_key(self.public_key)
        if actual != self.alg:
            raise ValueError(f"key {self.kid}: registered as {self.alg} but is a {actual} key")


class KeyRegistry(Mapping[str, RegisteredKey]):
    """Immutable ``kid -> RegisteredKey`` map; a ``kid`` registered twice is refused.

    Two partners sharing a ``kid`` would make "which partner signed this?" ambiguous,
    so the constructor raises ``ValueError`` rather than letting the last one win.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[RegisteredKey] = ()) -> None:
        table: dict[str, RegisteredKey] = {}
        for key in keys:
            if key.kid in table:
                raise ValueError(f"kid {key.kid} is registered twice")
            table[key.kid] = key
        self._keys = table

    def __getitem__(self, kid: str) -> RegisteredKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def get(self, kid: str, /) -> RegisteredKey | None: ...
    @overload
    def get(self, kid: str, /, default: RegisteredKey | _T) -> RegisteredKey | _T: ...
    def get(self, kid: str, /, default: object = None) -> object:
        """The key registered under ``kid``, or ``default`` (``None``): one dict lookup."""
        return self._keys.get(kid, default)

    def for_partner(self, partner: str) -> tuple[RegisteredKey, ...]:
        """Every key a partner may sign with (for key listings and rotation checks)."""
        return tuple(k for k in self._keys.values() if k.partner == partner)

    def __repr__(self) -> str:
        return f"KeyRegistry({sorted(self._keys)!r})"
