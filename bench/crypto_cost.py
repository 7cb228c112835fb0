"""The raw cost of the verify path's cryptography on this machine (bench 1's limit).

One partner ``POST /v1/licenses/verify`` of a license issued by the node itself does:

* one ES256 check of the request token's signature;
* one ES256 check of the license's signature (the issuer chain is cached by the trust
  store after the first license of an authority, so no certificate check repeats);
* the hashing: SHA-256 of the body (the token's ``bdh``), of the license payload (its
  digest), of request and response for the audit entry, of the erasable payload with
  its salt (``commit``), the keyed pseudonym (HMAC-SHA256), the leaf hash, about one
  interior Merkle node per entry, and the trust store's cache key over ``x5c``.

Each primitive is timed alone with ``cryptography``/``hashlib`` (median of repeats);
their sum is what the path could cost if nothing but cryptography ran.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.encoding import b64u_decode
from gateway.licenses.license_jws import es256_verify, parse_license_jws
from gateway.tokens.mint import SigningKey, mint_request_token


def _per_call(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median seconds per call over ``repeats`` runs of ``calls`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


@dataclass(frozen=True)
class CryptoCost:
    token_signature_s: float
    license_signature_s: float
    hashing_s: float

    @property
    def total_s(self) -> float:
        return self.token_signature_s + self.license_signature_s + self.hashing_s

    def as_dict(self) -> dict[str, float]:
        return {
            "token_signature_us": round(self.token_signature_s * 1e6, 1),
            "license_signature_us": round(self.license_signature_s * 1e6, 1),
            "hashing_us": round(self.hashing_s * 1e6, 1),
            "total_us": round(self.total_s * 1e6, 1),
        }


def measure(
    license_jws: str,
    body: bytes,
    response: bytes,
    issuer_key: ec.EllipticCurvePublicKey,
    calls: int = 400,
) -> CryptoCost:
    """Time the primitives of one verify call with the real token, license and bodies."""
    signer = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    token = mint_request_token(
        signer, iss="cn-330800", aud="cn-360800", method="POST",
        path_qs="/v1/licenses/verify", body=body,
    )  # fmt: skip
    head, claims, sig = token.split(".")
    token_input, token_sig = f"{head}.{claims}".encode(), b64u_decode(sig)
    token_pub = signer.private_key.public_key()
    assert isinstance(token_pub, ec.EllipticCurvePublicKey)
    jws = parse_license_jws(license_jws)
    x5c = jws.x5c()
    secret, salt = os.urandom(32), os.urandom(16)
    entry = b"e" * 620  # a license.verify entry is about 600 bytes
    sha, left, right = hashlib.sha256, os.urandom(32), os.urandom(32)

    def hashing() -> None:
        sha(body).digest()  # bdh
        sha(jws.payload).digest()  # license digest
        sha(body).digest()  # audit: request
        sha(response).digest()  # audit: response
        sha(b"tongban/payload/v1\n" + salt + response[:300]).digest()  # commit
        hmac.digest(secret, b"1.2.156.3005.2.11100000000013338W032", "sha256")  # pseudonym
        sha(b"\x00" + entry).digest()  # leaf
        sha(b"\x01" + left + right).digest()  # ~one interior node per entry
        sha(b"".join(len(d).to_bytes(4, "big") + d for d in x5c)).digest()  # chain cache key

    return CryptoCost(
        token_signature_s=_per_call(lambda: es256_verify(token_pub, token_input, token_sig), calls),
        license_signature_s=_per_call(
            lambda: es256_verify(issuer_key, jws.signing_input, jws.signature), calls
        ),
        hashing_s=_per_call(hashing, calls * 5),
    )
