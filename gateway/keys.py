"""The node's key material (SPEC 9) and the demo PKI that ``tongban certs init`` makes.

Layout under ``certs/``::

    trust/<province>.pem            provincial root CA certificates (trust anchors)
    ca/<province>.key.pem           the demo roots' private keys (demo only, never committed)
    <node>/token.key.pem|.pub.pem   request-token key, ES256; kid = RFC 7638 thumbprint
    <node>/log.key.pem, log.vkey    checkpoint key, Ed25519, and its C2SP verifier key
    <node>/issuer.key.pem|cert.pem  the city's license-issuing authority (ES256 + X.509)
    <node>/hmac.key                 shared secret for HMAC-signing partners (sharing_api)

Private keys are written 0600 and ``init`` never replaces a file unless forced, so a
running network's identities cannot be lost by a stray command.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from gateway.audit.note import verifier_key
from gateway.config import NodeConfig
from gateway.errors import ConfigError
from gateway.tokens.mint import SigningKey
from gateway.tokens.registry import jwk_thumbprint, public_jwk

PROVINCE_NAMES = {
    "jiangxi": "江西省",
    "zhejiang": "浙江省",
    "fujian": "福建省",
    "hunan": "湖南省",
    "neimenggu": "内蒙古自治区",
}


def log_origin(node_id: str) -> str:
    """Checkpoint origin line (SPEC 6)."""
    return f"tongban/{node_id}/audit"


# ---------------------------------------------------------------- loading


def _read_private(path: Path) -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    if not path.is_file():
        raise ConfigError(str(path), "-", "key file missing (run `tongban certs init`)")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ConfigError(str(path), "-", "unexpected key type")
    return key


def load_token_key(cfg: NodeConfig) -> SigningKey:
    """The node's ES256 request-token key with its thumbprint kid."""
    key = _read_private(cfg.node_certs / "token.key.pem")
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(str(cfg.node_certs / "token.key.pem"), "-", "expected a P-256 key")
    return SigningKey(kid=jwk_thumbprint(key.public_key()), alg="ES256", private_key=key)


def load_log_key(cfg: NodeConfig) -> ed25519.Ed25519PrivateKey:
    key = _read_private(cfg.node_certs / "log.key.pem")
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(str(cfg.node_certs / "log.key.pem"), "-", "expected an Ed25519 key")
    return key


@dataclass(frozen=True)
class Issuer:
    """A license-issuing authority: its signing key and certificate chain (leaf first)."""

    uscc: str
    name: str
    private_key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]


def load_issuer(cfg: NodeConfig) -> Issuer:
    key = _read_private(cfg.node_certs / "issuer.key.pem")
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(str(cfg.node_certs / "issuer.key.pem"), "-", "expected a P-256 key")
    certs = x509.load_pem_x509_certificates((cfg.node_certs / "issuer.cert.pem").read_bytes())
    return Issuer(uscc=cfg.issuer_uscc, name=cfg.issuer_name, private_key=key, chain=tuple(certs))


def load_trust_anchors(trust_dir: Path) -> tuple[x509.Certificate, ...]:
    """Every provincial root in ``certs/trust/``."""
    anchors: list[x509.Certificate] = []
    for pem in sorted(trust_dir.glob("*.pem")):
        anchors.extend(x509.load_pem_x509_certificates(pem.read_bytes()))
    return tuple(anchors)


def load_hmac_secret(certs_dir: Path, node_id: str) -> bytes:
    path = certs_dir / node_id / "hmac.key"
    if not path.is_file():
        raise ConfigError(str(path), "-", "HMAC secret missing (run `tongban certs init`)")
    return bytes.fromhex(path.read_text().strip())


def public_keys_document(cfg: NodeConfig) -> dict[str, object]:
    """``GET /.well-known/tongban/keys`` (SPEC 9)."""
    token = load_token_key(cfg)
    return {
        "node": cfg.id,
        "keys": [public_jwk(token.private_key.public_key(), token.kid, "ES256")],
        "log": (cfg.node_certs / "log.vkey").read_text().strip(),
    }


# ---------------------------------------------------------------- making (demo PKI)


def _write(path: Path, data: bytes, *, private: bool, force: bool, made: list[Path]) -> None:
    if path.exists() and not force:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    made.append(path)


def _pem_private(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_public(key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def make_root(
    province: str, key: ec.EllipticCurvePrivateKey, *, not_before: dt.datetime, years: int = 20
) -> x509.Certificate:
    """A provincial root CA certificate (self-signed, CA:true, keyCertSign)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, PROVINCE_NAMES.get(province, province)),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"{PROVINCE_NAMES.get(province, province)}电子证照根CA"
            ),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_issuer_cert(
    *,
    uscc: str,
    name: str,
    public_key: ec.EllipticCurvePublicKey,
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    digital_signature: bool = True,
) -> x509.Certificate:
    """An issuing authority's certificate: USCC in subject serialNumber (SPEC 4.3)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} 电子证照签发"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, uscc),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature,
                not digital_signature,
                False,
                False,
                False,
                False,
                False,
                False,
                False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )


def init_demo_pki(configs: list[NodeConfig], certs_dir: Path, *, force: bool = False) -> list[Path]:
    """Make every key and certificate the demo network needs; returns the files written."""
    made: list[Path] = []
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    roots: dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {}
    for province in sorted({c.province for c in configs}):
        key_path = certs_dir / "ca" / f"{province}.key.pem"
        cert_path = certs_dir / "trust" / f"{province}.pem"
        if force or not key_path.exists() or not cert_path.exists():
            root_key = ec.generate_private_key(ec.SECP256R1())
            _write(key_path, _pem_private(root_key), private=True, force=True, made=made)
            root = make_root(province, root_key, not_before=start)
            _write(
                cert_path,
                root.public_bytes(serialization.Encoding.PEM),
                private=False,
                force=True,
                made=made,
            )
        loaded = _read_private(key_path)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        roots[province] = (x509.load_pem_x509_certificate(cert_path.read_bytes()), loaded)

    for cfg in configs:
        d = certs_dir / cfg.id
        if force or not (d / "token.key.pem").exists():
            tk = ec.generate_private_key(ec.SECP256R1())
            _write(d / "token.key.pem", _pem_private(tk), private=True, force=True, made=made)
            _write(
                d / "token.pub.pem",
                _pem_public(tk.public_key()),
                private=False,
                force=True,
                made=made,
            )
        if force or not (d / "log.key.pem").exists():
            lk = ed25519.Ed25519PrivateKey.generate()
            _write(d / "log.key.pem", _pem_private(lk), private=True, force=True, made=made)
            vkey = verifier_key(log_origin(cfg.id), lk.public_key()) + "\n"
            _write(d / "log.vkey", vkey.encode(), private=False, force=True, made=made)
        if (
            force
            or not (d / "issuer.key.pem").exists()
            or roots_changed(made, cfg.province, certs_dir)
        ):
            ik = ec.generate_private_key(ec.SECP256R1())
            root, root_key = roots[cfg.province]
            cert = make_issuer_cert(
                uscc=cfg.issuer_uscc,
                name=cfg.issuer_name,
                public_key=ik.public_key(),
                root=root,
                root_key=root_key,
                not_before=start,
                not_after=now + dt.timedelta(days=3650),
            )
            _write(d / "issuer.key.pem", _pem_private(ik), private=True, force=True, made=made)
            chain = cert.public_bytes(serialization.Encoding.PEM)
            _write(d / "issuer.cert.pem", chain, private=False, force=True, made=made)
        if force or not (d / "hmac.key").exists():
            _write(
                d / "hmac.key",
                (secrets.token_hex(32) + "\n").encode(),
                private=True,
                force=True,
                made=made,
            )
    return made


def roots_changed(made: list[Path], province: str, certs_dir: Path) -> bool:
    """A freshly made root invalidates the issuer certificates it used to sign."""
    return (certs_dir / "trust" / f"{province}.pem") in made


def iter_private_key_files(certs_dir: Path) -> Iterator[Path]:
    yield from certs_dir.rglob("*.key.pem")
    yield from certs_dir.rglob("hmac.key")
