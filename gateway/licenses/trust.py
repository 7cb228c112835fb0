"""Trust in issuer certificates (SPEC 4.3): chains to the provincial roots in certs/trust.

A license carries its issuer certificate and intermediates in ``x5c``. A chain is
trusted when each certificate is signed by the next, every CA in it may sign
certificates (basicConstraints CA, keyCertSign, path length), the last one is signed
by a trust anchor, no certificate carries a critical extension this node does not
understand, and the issuer certificate itself is an end-entity P-256 key allowed
``digitalSignature``.

Validity *dates* are not part of this decision: SPEC 4.3 asks for validity at the
license's issuance, which differs per license; ``checks.check_certificate`` applies it
to the path this module returns.

Parsing certificates and checking their signatures is the expensive part of verifying
a license, and a city signs thousands of licenses with one certificate. Both are
cached by their DER bytes (bounded LRU), so a verification costs one ECDSA check of the
license itself once a chain has been seen.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from gateway.keys import load_trust_anchors

__all__ = ["TrustStore", "TrustedChain", "UntrustedChain", "subject_uscc"]

_K = TypeVar("_K")
_V = TypeVar("_V")

_UNDERSTOOD = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.CERTIFICATE_POLICIES,
    }
)
"""Extensions this verifier either enforces or may safely ignore when marked critical."""


class UntrustedChain(Exception):
    """The certificate chain is not trusted; the message says why in plain words."""


class _Lru(Generic[_K, _V]):
    """A small bounded mapping that forgets the least recently used entry first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[_K, _V] = OrderedDict()

    def get(self, key: _K) -> _V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: _K, value: _V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


@dataclass(frozen=True)
class TrustedChain:
    """A chain that passed every check: the issuer certificate, its key and the path."""

    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePublicKey
    path: tuple[x509.Certificate, ...]
    """Issuer certificate first, then intermediates, then the trust anchor."""
    validity: tuple[tuple[float, float], ...] = ()
    """``(not before, not after)`` as epoch seconds for each certificate of ``path``,
    read once (comparing aware datetimes costs more than the rest of the check)."""


@dataclass(frozen=True)
class _Failure:
    reason: str


@functools.lru_cache(maxsize=256)
def subject_uscc(cert: x509.Certificate) -> str | None:
    """The USCC in the subject ``serialNumber`` (SPEC 4.3), or ``None`` if absent."""
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


def _fingerprint(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.tbs_certificate_bytes + cert.signature).digest()


def _critical_unknown(cert: x509.Certificate) -> bool:
    return any(ext.critical and ext.oid not in _UNDERSTOOD for ext in cert.extensions)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _may_sign_certificates(ca: x509.Certificate, below: int) -> str | None:
    """Why ``ca`` may not sign a certificate with ``below`` CAs under it, or ``None``."""
    constraints = _extension(ca, x509.BasicConstraints)
    if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
        return "a certificate in the chain is not a CA but signed another certificate"
    usage = _extension(ca, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
        return "a CA in the chain is not allowed to sign certificates (keyCertSign)"
    if constraints.path_length is not None and below > constraints.path_length:
        return "the chain is longer than a CA's path length constraint allows"
    return None


def _leaf_problem(leaf: x509.Certificate) -> str | None:
    constraints = _extension(leaf, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        return "the issuer certificate is a CA certificate, not an end-entity certificate"
    usage = _extension(leaf, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        return "the issuer certificate does not allow digitalSignature"
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return "the issuer certificate's key is not a P-256 key (ES256)"
    return None


class TrustStore:
    """The trust anchors of one node and the caches that make repeated checks cheap."""

    def __init__(self, anchors: Iterable[x509.Certificate], *, cache_size: int = 1024) -> None:
        self._anchors: dict[bytes, x509.Certificate] = {_fingerprint(a): a for a in anchors}
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for anchor in self._anchors.values():
            self._by_subject.setdefault(anchor.subject, []).append(anchor)
        self._certs: _Lru[bytes, x509.Certificate] = _Lru(cache_size)
        self._chains: _Lru[tuple[bytes, ...], TrustedChain | _Failure] = _Lru(cache_size)

    @classmethod
    def from_dir(cls, trust_dir: Path) -> TrustStore:
        """Every provincial root in ``certs/trust/``."""
        return cls(load_trust_anchors(trust_dir))

    @property
    def anchor_count(self) -> int:
        return len(self._anchors)

    def certificate(self, der: bytes) -> x509.Certificate:
        """Parse a DER certificate once; ``ValueError`` if it is not one.

        Keyed by the DER bytes themselves: equal bytes are the same certificate, and a
        ``bytes`` object computes its hash once, so a hit costs a dictionary lookup.
        """
        cert = self._certs.get(der)
        if cert is None:
            cert = x509.load_der_x509_certificate(der)
            self._certs.put(der, cert)
        return cert

    def chain(self, ders: tuple[bytes, ...]) -> TrustedChain:
        """The trusted path for an ``x5c`` chain, or ``UntrustedChain`` saying why."""
        known = self._chains.get(ders)
        if known is None:
            known = self._build(ders)
            self._chains.put(ders, known)
        if isinstance(known, _Failure):
            raise UntrustedChain(known.reason)
        return known

    def _build(self, ders: tuple[bytes, ...]) -> TrustedChain | _Failure:
        try:
            certs = [self.certificate(d) for d in ders]
        except ValueError:
            return _Failure("a certificate in x5c is not a DER X.509 certificate")
        if not certs:
            return _Failure("no certificate chain")
        leaf = certs[0]
        problem = _leaf_problem(leaf)
        if problem:
            return _Failure(problem)
        path = [leaf]
        for candidate in certs[1:]:
            if _fingerprint(candidate) in self._anchors:
                break  # a sender may include the root; the local copy is what counts
            if not _signed_by(path[-1], candidate):
                return _Failure("a certificate in the chain is not signed by the next one")
            problem = _may_sign_certificates(candidate, below=len(path) - 1)
            if problem:
                return _Failure(problem)
            path.append(candidate)
        if any(_critical_unknown(c) for c in path):
            return _Failure("a certificate carries a critical extension this node does not know")
        for anchor in self._by_subject.get(path[-1].issuer, []):
            if _signed_by(path[-1], anchor):
                problem = _may_sign_certificates(anchor, below=len(path) - 1)
                if problem:
                    return _Failure(problem)
                key = leaf.public_key()
                assert isinstance(key, ec.EllipticCurvePublicKey)  # _leaf_problem checked it
                full = (*path, anchor)
                validity = tuple(
                    (c.not_valid_before_utc.timestamp(), c.not_valid_after_utc.timestamp())
                    for c in full
                )
                return TrustedChain(leaf=leaf, leaf_key=key, path=full, validity=validity)
        return _Failure("the chain does not lead to a trusted provincial root CA (certs/trust)")
