"""Node configuration: one TOML file per node, validated in full before anything starts.

Every problem is reported as ``ConfigError(file, key, reason)`` so an operator sees
``config/demo/cn-360800.toml: partners[1].url: not an http(s) URL`` and nothing else.
Relative paths in a file are relative to that file's folder, so a node directory can be
moved as a whole.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gateway.errors import ConfigError
from gateway.tokens.registry import KeyRegistry, RegisteredKey, alg_for_key, jwk_thumbprint

NODE_ID_RE = re.compile(r"^cn-[0-9]{6}$")

#: Endpoint names used by partner ACLs; the HTTP layer names each /v1 route with one.
ENDPOINTS: frozenset[str] = frozenset(
    {
        "catalog",
        "licenses.verify",
        "licenses.fetch",
        "licenses.status",
        "service_requests.submit",
        "service_requests.get",
        "service_requests.events",
        "audit.proof",
        "audit.entries",
        "witness",
    }
)
ADAPTERS: frozenset[str] = frozenset({"native", "xml_envelope", "form_async", "sharing_api"})
TOKEN_ALGS: frozenset[str] = frozenset({"ES256", "EdDSA"})


@dataclass(frozen=True)
class PartnerKey:
    kid: str
    alg: str
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class PartnerConfig:
    """A partner city as this node sees it: how to reach it and what it may do here."""

    id: str
    name: str
    url: str
    adapter: str
    keys: tuple[PartnerKey, ...]
    issuers: tuple[str, ...]
    endpoints: frozenset[str]
    items: frozenset[str]
    rate: float
    burst: int
    enabled: bool
    agreement_from: date | None
    agreement_until: date | None
    log_vkey: str | None
    hmac_key: bytes | None
    options: Mapping[str, Any] = field(default_factory=dict)

    def active_on(self, day: date) -> bool:
        """Inside its 跨省通办 agreement dates and not disabled."""
        if not self.enabled:
            return False
        if self.agreement_from is not None and day < self.agreement_from:
            return False
        return not (self.agreement_until is not None and day > self.agreement_until)

    def allows_item(self, code: str) -> bool:
        return "*" in self.items or code in self.items


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node needs to run; built only by ``load_node_config``."""

    source: Path
    id: str
    name: str
    province: str
    host: str
    port: int
    public_url: str
    data_dir: Path
    certs_dir: Path
    catalog_path: Path
    issuer_uscc: str
    issuer_name: str
    redis_url: str | None
    max_body_bytes: int
    status_cache_seconds: float
    holidays: tuple[date, ...]
    partners: tuple[PartnerConfig, ...]
    desk_users_file: Path | None
    demo: bool
    simulator: str | None

    @property
    def node_certs(self) -> Path:
        return self.certs_dir / self.id

    @property
    def trust_dir(self) -> Path:
        return self.certs_dir / "trust"

    def partner(self, partner_id: str) -> PartnerConfig | None:
        for p in self.partners:
            if p.id == partner_id:
                return p
        return None

    def partner_for_issuer(self, uscc: str) -> PartnerConfig | None:
        """The partner that answers for an issuing authority's USCC (SPEC 4.3)."""
        for p in self.partners:
            if uscc in p.issuers:
                return p
        return None

    def key_registry(self) -> KeyRegistry:
        return KeyRegistry(
            RegisteredKey(kid=k.kid, partner=p.id, alg=k.alg, public_key=k.public_key)  # type: ignore[arg-type]
            for p in self.partners
            for k in p.keys
        )

    def with_port_offset(self, offset: int) -> NodeConfig:
        """Move this node and every loopback partner by ``offset`` (``--base-port``)."""
        if offset == 0:
            return self
        partners = tuple(replace(p, url=shift_loopback_port(p.url, offset)) for p in self.partners)
        return replace(
            self,
            port=self.port + offset,
            public_url=shift_loopback_port(self.public_url, offset),
            partners=partners,
        )


def shift_loopback_port(url: str, offset: int) -> str:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{parts.port + offset}"))


class _Reader:
    """Reads typed values from one TOML table and names the exact key on any error."""

    def __init__(self, file: Path, prefix: str, table: Mapping[str, Any]) -> None:
        self.file = file
        self.prefix = prefix
        self.table = table
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> ConfigError:
        return ConfigError(str(self.file), self.key(name), reason)

    def get(
        self, name: str, kind: type | tuple[type, ...], default: Any = ..., *, required: bool = True
    ) -> Any:
        self.used.add(name)
        if name not in self.table:
            if default is not ...:
                return default
            raise self.fail(name, "missing")
        value = self.table[name]
        if (
            isinstance(value, bool)
            and kind is not bool
            and not (isinstance(kind, tuple) and bool in kind)
        ):
            raise self.fail(name, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(name, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def path(self, name: str, default: str | None = None) -> Path:
        raw = self.get(name, str, default)
        if raw is None:
            raise self.fail(name, "missing")
        p = Path(raw)
        return p if p.is_absolute() else (self.file.parent / p).resolve()

    def reject_unknown(self) -> None:
        for name in self.table:
            if name not in self.used:
                raise self.fail(name, "unknown key")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
        date: "a date",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _http_url(r: _Reader, name: str) -> str:
    url: str = r.get(name, str)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise r.fail(name, "not an http(s) URL")
    try:
        _ = parts.port
    except ValueError as exc:
        raise r.fail(name, "not an http(s) URL (bad port)") from exc
    return url.rstrip("/")


def _load_public_key(
    r: _Reader, name: str, require: bool
) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | None:
    path = r.path(name)
    if not path.is_file():
        if not require:
            return None
        raise r.fail(name, f"key file {path} does not exist (run `tongban certs init`)")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise r.fail(name, f"key file {path} is not a PEM public key") from exc
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise r.fail(name, "only P-256 (ES256) and Ed25519 (EdDSA) keys are accepted")


def _date(r: _Reader, name: str) -> date | None:
    value = r.get(name, date, None)
    if value is not None and not isinstance(value, date):
        raise r.fail(name, "expected a date like 2024-01-01")
    return value


def _optional_file(r: _Reader, name: str, require: bool) -> str | None:
    if name not in r.table:
        r.used.add(name)
        return None
    path = r.path(name)
    if not path.is_file():
        if require:
            raise r.fail(name, f"file {path} does not exist (run `tongban certs init`)")
        return None
    return path.read_text(encoding="utf-8").strip()


def _partner(
    file: Path, index: int, table: Mapping[str, Any], seen_kids: dict[str, str], require: bool
) -> PartnerConfig:
    r = _Reader(file, f"partners[{index}]", table)
    pid = r.get("id", str)
    if not NODE_ID_RE.match(pid):
        raise r.fail("id", "node ids are cn- and a 6-digit division code")
    adapter = r.get("adapter", str, "native")
    if adapter not in ADAPTERS:
        raise r.fail(
            "adapter", f"unknown adapter {adapter!r} (known: {', '.join(sorted(ADAPTERS))})"
        )
    keys: list[PartnerKey] = []
    for ki, kt in enumerate(r.get("keys", list, [])):
        if not isinstance(kt, dict):
            raise r.fail(f"keys[{ki}]", "expected a table")
        kr = _Reader(file, f"{r.prefix}.keys[{ki}]", kt)
        alg = kr.get("alg", str)
        if alg not in TOKEN_ALGS:
            raise kr.fail("alg", f"{alg!r} is not allowed (ES256 or EdDSA)")
        pub = _load_public_key(kr, "file", require)
        if pub is None:
            kr.reject_unknown()
            continue
        if alg_for_key(pub) != alg:
            raise kr.fail("alg", f"{alg} does not fit the key in the file ({alg_for_key(pub)})")
        kid = jwk_thumbprint(pub)
        declared = kr.get("kid", str, None)
        if declared is not None and declared != kid:
            raise kr.fail("kid", "does not match the key's RFC 7638 thumbprint")
        if kid in seen_kids:
            raise kr.fail("kid", f"duplicate kid: already registered for {seen_kids[kid]}")
        seen_kids[kid] = pid
        kr.reject_unknown()
        keys.append(PartnerKey(kid=kid, alg=alg, public_key=pub))
    endpoints = frozenset(r.get("endpoints", list, []))
    unknown = endpoints - ENDPOINTS - {"*"}
    if unknown:
        raise r.fail("endpoints", f"unknown endpoint {sorted(unknown)[0]!r}")
    if "*" in endpoints:
        endpoints = ENDPOINTS
    issuers = tuple(r.get("issuers", list, []))
    for uscc in issuers:
        if not isinstance(uscc, str) or len(uscc) != 18:
            raise r.fail("issuers", f"{uscc!r} is not an 18-character unified social credit code")
    rate = float(r.get("rate", (int, float), 50.0))
    burst = r.get("burst", int, max(1, int(rate * 2)))
    if rate <= 0 or burst < 1:
        raise r.fail("rate", "rate and burst must be positive")
    log_vkey = _optional_file(r, "log_vkey_file", require)
    hmac_hex = _optional_file(r, "hmac_key_file", require)
    try:
        hmac_key = bytes.fromhex(hmac_hex) if hmac_hex is not None else None
    except ValueError as exc:
        raise r.fail("hmac_key_file", "not a hex secret") from exc
    options = r.get("options", dict, {})
    cfg = PartnerConfig(
        id=pid,
        name=r.get("name", str, pid),
        url=_http_url(r, "url"),
        adapter=adapter,
        keys=tuple(keys),
        issuers=issuers,
        endpoints=endpoints,
        items=frozenset(r.get("items", list, ["*"])),
        rate=rate,
        burst=burst,
        enabled=r.get("enabled", bool, True),
        agreement_from=_date(r, "agreement_from"),
        agreement_until=_date(r, "agreement_until"),
        log_vkey=log_vkey,
        hmac_key=hmac_key,
        options=options,
    )
    if cfg.agreement_from and cfg.agreement_until and cfg.agreement_from > cfg.agreement_until:
        raise r.fail("agreement_until", "ends before agreement_from")
    r.reject_unknown()
    return cfg


def load_node_config(path: str | Path, *, require_keys: bool = True) -> NodeConfig:
    """Load and validate a node file; raises ``ConfigError`` naming file, key and reason.

    ``require_keys=False`` is only for ``certs init``, which reads the files to learn what
    keys to make before they exist.
    """
    file = Path(path).resolve()
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(str(file), "-", "file does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), "-", f"not valid TOML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(file), "-", "not UTF-8 text") from exc
    top = _Reader(file, "", raw)
    node_table = top.get("node", dict)
    partner_tables = top.get("partners", list, [])
    top.reject_unknown()

    n = _Reader(file, "node", node_table)
    node_id = n.get("id", str)
    if not NODE_ID_RE.match(node_id):
        raise n.fail("id", "node ids are cn- and a 6-digit division code")
    listen = n.get("listen", str, "127.0.0.1:8080")
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise n.fail("listen", "expected host:port")
    redis_url = n.get("redis_url", str, "") or None
    if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise n.fail("redis_url", "expected a redis:// URL")
    max_body = n.get("max_body_bytes", int, 1 << 20)
    if not 1024 <= max_body <= 64 << 20:
        raise n.fail("max_body_bytes", "must be between 1 KiB and 64 MiB")
    holidays = tuple(n.get("holidays", list, []))
    for h in holidays:
        if not isinstance(h, date):
            raise n.fail("holidays", f"{h!r} is not a date")
    users = n.get("desk_users", str, None)
    cfg_partial = dict(
        source=file,
        id=node_id,
        name=n.get("name", str, node_id),
        province=n.get("province", str),
        host=host,
        port=int(port_text),
        public_url=n.get("public_url", str, f"http://{listen}").rstrip("/"),
        data_dir=n.path("data_dir", f"../../var/{node_id}"),
        certs_dir=n.path("certs_dir", "../../certs"),
        catalog_path=n.path("catalog", "../catalog.toml"),
        issuer_uscc=n.get("issuer_uscc", str),
        issuer_name=n.get("issuer_name", str),
        redis_url=redis_url,
        max_body_bytes=max_body,
        status_cache_seconds=float(n.get("status_cache_seconds", (int, float), 60)),
        holidays=holidays,
        desk_users_file=(file.parent / users).resolve() if users else None,
        demo=n.get("demo", bool, False),
        simulator=n.get("simulator", str, None),
    )
    if cfg_partial["simulator"] is not None and cfg_partial["simulator"] not in ADAPTERS - {
        "native"
    }:
        raise n.fail("simulator", f"unknown partner style {cfg_partial['simulator']!r}")
    if len(cfg_partial["issuer_uscc"]) != 18:
        raise n.fail("issuer_uscc", "not an 18-character unified social credit code")
    n.reject_unknown()

    seen_ids: set[str] = set()
    seen_kids: dict[str, str] = {}
    partners = []
    for i, table in enumerate(partner_tables):
        if not isinstance(table, dict):
            raise ConfigError(str(file), f"partners[{i}]", "expected a table")
        p = _partner(file, i, table, seen_kids, require_keys)
        if p.id in seen_ids:
            raise ConfigError(str(file), f"partners[{i}].id", f"partner {p.id} listed twice")
        if p.id == node_id:
            raise ConfigError(str(file), f"partners[{i}].id", "a node cannot be its own partner")
        seen_ids.add(p.id)
        partners.append(p)
    return NodeConfig(partners=tuple(partners), **cfg_partial)


def demo_config_path(node_id: str, root: Path | None = None) -> Path:
    """The file of a demo-network node (``--node ID``)."""
    base = root or Path(__file__).resolve().parent.parent
    path = base / "config" / "demo" / f"{node_id}.toml"
    if not path.is_file():
        raise ConfigError(str(path), "-", f"{node_id} is not a node of the demo network")
    return path


DEMO_NODE_IDS: tuple[str, ...] = ("cn-360800", "cn-330800", "cn-350800", "cn-430200", "cn-150500")
"""The demo network of SPEC 1, in port order."""
