"""A simulated city as an issuing authority: its licenses and the 亮证码 its app shows.

The licenses are the city's sample licenses (``gateway.licenses.samples``: documents
and intended statuses) plus any issued through ``/_sim/licenses``, signed
with the city's issuer key from ``certs/<id>/issuer.key.pem`` exactly as a Tongban node
signs them (SPEC 4.3), so a verifier cannot tell a simulated city's license from a real
one. The QR tokens (SPEC 4.4) are what the city's own citizen app would show: signed
with the city's token key, ``typ`` ``tongban-qr+jwt``, at most 180 s, usable once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.sim_store import SimStore, StoredLicense
from adapters.wire_time import parse_rfc3339
from gateway.config import NodeConfig
from gateway.errors import Conflict, ValidationFailed
from gateway.exchange.catalog import load_catalog
from gateway.keys import load_issuer, load_token_key
from gateway.licenses.issuing import issuable_document
from gateway.licenses.license_jws import es256_verify, sign_license
from gateway.licenses.qr import MAX_QR_LIFETIME, mint_qr, parse_qr
from gateway.licenses.samples import sample_licenses

QR_LEEWAY = 30


class ConsentInvalid(Exception):
    """The QR token is not this city's, is malformed, expired, or names no license."""


class ConsentUsed(Exception):
    """The QR token was already used once (SPEC 4.4: a QR token works once)."""


@dataclass(frozen=True)
class Consent:
    identifier: str
    digest: str
    fields: tuple[str, ...]
    jti: str
    expires_at: float


def seed_licenses(store: SimStore, cfg: NodeConfig) -> int:
    """Sign and store the city's sample licenses with their intended statuses, once;
    later starts keep what is there (statuses changed since included)."""
    if store.license_count():
        return 0
    issuer = load_issuer(cfg)
    samples = sample_licenses(cfg)
    for sample in samples:
        signed = sign_license(issuer, sample.document)
        store.add_license(signed.identifier, signed.jws, signed.digest)
        status = sample.status
        if status.status != "valid":
            since = parse_rfc3339(status.since).timestamp() if status.since else 0.0
            store.set_license_status(signed.identifier, status.status, since, status.reason)
    return len(samples)


def issue_draft(store: SimStore, cfg: NodeConfig, draft: Mapping[str, Any], today: date) -> str:
    """Issue one license from a draft as this city's authority; returns its identifier.

    The document is completed and validated exactly as a Tongban issuing node does it
    (``gateway.licenses.issuing.issuable_document``); ``ValidationFailed`` if it is bad.
    """
    catalog = load_catalog(cfg.catalog_path)
    first = store.license_count() + 1
    for n in range(first, first + 100):  # desk serials 9xxxx never meet the samples'
        serial = f"{today.year % 100:02d}{90000 + n % 10000:05d}"
        document = issuable_document(draft, cfg=cfg, catalog=catalog, serial=serial, today=today)
        if store.license(document.raw["identifier"]) is None:
            signed = sign_license(load_issuer(cfg), document.raw)
            store.add_license(signed.identifier, signed.jws, signed.digest)
            return signed.identifier
    raise Conflict("no free serial for a new license")


def mint_holder_qr(cfg: NodeConfig, lic: StoredLicense, fields: Sequence[str], now: float) -> str:
    """``TB1:<JWS>``: the holder consents to show ``fields`` of ``lic`` (SPEC 4.4)."""
    return mint_qr(
        load_token_key(cfg), iss=cfg.id, lid=lic.identifier, ldh=lic.digest, sco=fields, now=now
    )


def verify_consent(cfg: NodeConfig, qr_text: str, now: float) -> Consent:
    """The consent a QR token gives, after every check but "used once"."""
    try:
        token = parse_qr(qr_text, require_prefix=False)
    except ValidationFailed as exc:
        raise ConsentInvalid("not a QR token") from exc
    key = load_token_key(cfg)
    if token.alg != "ES256" or token.kid != key.kid or token.iss != cfg.id:
        raise ConsentInvalid("not this city's QR token")
    public = key.private_key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    try:
        es256_verify(public, token.signing_input, token.signature)
    except (InvalidSignature, ValueError) as exc:
        raise ConsentInvalid("bad signature") from exc
    if (
        token.exp - token.iat > MAX_QR_LIFETIME
        or token.exp + QR_LEEWAY < now
        or token.iat - QR_LEEWAY > now
    ):
        raise ConsentInvalid("expired or not yet valid")
    return Consent(
        identifier=token.lid,
        digest=token.ldh,
        fields=token.sco,
        jti=token.jti,
        expires_at=token.exp,
    )


def fetch_with_consent(store: SimStore, cfg: NodeConfig, qr_text: str, now: float) -> str:
    """The license JWS a valid, unused QR token consents to; raises ``Consent*``."""
    consent = verify_consent(cfg, qr_text, now)
    lic = store.license(consent.identifier)
    if lic is None or lic.digest != consent.digest:
        raise ConsentInvalid("the QR token names no license of this city")
    if not store.use_consent(consent.jti, consent.expires_at + QR_LEEWAY, now):
        raise ConsentUsed("the QR token was used before")
    return lic.jws
