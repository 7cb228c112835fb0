"""Test helpers: a throw-away PKI and license documents, signed with the real code.

Every flawed license a test needs (untrusted root, expired certificate, wrong USCC,
no digitalSignature, ...) is made here with real keys and certificates, so the checks
under test see exactly what a forger or a misconfigured issuer would produce.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from gateway.encoding import b64u_decode, b64u_encode
from gateway.keys import Issuer, make_issuer_cert, make_root
from gateway.licenses.identifiers import make_license_identifier, make_resident_id
from gateway.licenses.license_jws import es256_sign, sign_license
from gateway.licenses.samples import DISABILITY_CERTIFICATE
from gateway.licenses.trust import TrustStore

QUZHOU_USCC = "113308000026472540"
QUZHOU_NAME = "衢州市数据资源管理局"
JIAN_USCC = "1136080001423588XW"
HOLDER_ID = make_resident_id("330802", dt.date(1978, 5, 17), "013")
OTHER_ID = make_resident_id("360802", dt.date(1990, 2, 3), "024")
START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


@dataclass
class Pki:
    """A provincial root of our own and issuer certificates under it."""

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey

    def issuer(
        self,
        *,
        uscc: str = QUZHOU_USCC,
        name: str = QUZHOU_NAME,
        not_before: dt.datetime = START,
        not_after: dt.datetime | None = None,
        digital_signature: bool = True,
    ) -> Issuer:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = make_issuer_cert(
            uscc=uscc,
            name=name,
            public_key=key.public_key(),
            root=self.root,
            root_key=self.root_key,
            not_before=not_before,
            not_after=not_after or dt.datetime.now(dt.UTC) + dt.timedelta(days=3650),
            digital_signature=digital_signature,
        )
        return Issuer(uscc=uscc, name=name, private_key=key, chain=(cert,))

    def trust(self) -> TrustStore:
        return TrustStore([self.root])


def new_pki(province: str = "zhejiang") -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    return Pki(make_root(province, key, not_before=START), key)


def make_ca(
    parent: x509.Certificate,
    parent_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = True,
    path_length: int | None = 0,
    critical_unknown: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """An intermediate CA (or, with ``ca=False``, an end-entity posing as one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "测试中级CA")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(parent.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=7300))
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    )
    if critical_unknown:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5.6"), b"\x05\x00"),
            critical=True,
        )
    return builder.sign(parent_key, hashes.SHA256()), key


def issuer_under(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *chain_above: x509.Certificate
) -> Issuer:
    """An issuer certificate signed by an intermediate; the chain lists what is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_issuer_cert(
        uscc=QUZHOU_USCC,
        name=QUZHOU_NAME,
        public_key=key.public_key(),
        root=ca,
        root_key=ca_key,
        not_before=START,
        not_after=START + dt.timedelta(days=3650),
    )
    return Issuer(QUZHOU_USCC, QUZHOU_NAME, key, (cert, ca, *chain_above))


def document(
    *,
    uscc: str = QUZHOU_USCC,
    serial: str = "2430599",
    type_code: str = DISABILITY_CERTIFICATE[0],
    issued_on: str = "2024-03-01",
    valid_from: str | None = None,
    valid_until: str | None = "2034-02-28",
    holder_id: str = HOLDER_ID,
    **over: Any,
) -> dict[str, Any]:
    """A disability certificate issued by ``uscc``; ``over`` replaces top-level members."""
    doc: dict[str, Any] = {
        "identifier": make_license_identifier(type_code, uscc, serial),
        "type_code": type_code,
        "type_name": DISABILITY_CERTIFICATE[1],
        "number": f"{holder_id}42",
        "holder": {"name": "张秀英", "id_type": "111", "id": holder_id},
        "issuer": {"name": QUZHOU_NAME, "code": uscc},
        "area_code": "330800",
        "issued_on": issued_on,
        "valid_from": valid_from or issued_on,
        "valid_until": valid_until,
        "data": {"disability_category": "肢体残疾", "disability_level": "二级"},
    }
    doc.update(over)
    return doc


def signed(issuer: Issuer, **over: Any) -> str:
    """The JWS of ``document(**over)`` signed by ``issuer``."""
    return sign_license(issuer, document(**over)).jws


def tamper_payload(jws: str) -> str:
    """Change one byte of the signed document (a digit of the holder's id), keep the rest."""
    header, payload, signature = jws.split(".")
    raw = bytearray(b64u_decode(payload))
    at = raw.index(HOLDER_ID.encode()) + 5
    raw[at] = ord("0") + (raw[at] - ord("0") + 1) % 10
    return f"{header}.{b64u_encode(bytes(raw))}.{signature}"


def swap_signature(jws: str, donor: str) -> str:
    """``jws`` with the signature of another license by the same issuer."""
    return jws.rsplit(".", 1)[0] + "." + donor.rsplit(".", 1)[1]


def with_header(issuer: Issuer, payload: bytes, **header: Any) -> str:
    """A JWS with a hand-made header over raw payload bytes, signed by ``issuer``."""
    full = {
        "alg": "ES256",
        "typ": "tongban-license+jwt",
        "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in issuer.chain],
    }
    full.update(header)
    full = {k: v for k, v in full.items() if v is not None}
    head = b64u_encode(json.dumps(full, separators=(",", ":")).encode())
    signing_input = f"{head}.{b64u_encode(payload)}"
    return f"{signing_input}.{b64u_encode(es256_sign(issuer.private_key, signing_input.encode()))}"
