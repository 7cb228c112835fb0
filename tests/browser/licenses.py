"""The issuing city's side for browser tests: seed Quzhou's licenses, mint 亮证码, revoke.

These run the licenses concern's own functions on Quzhou's register (SQLite, shared
safely with the running node), exactly as ``tongban license ...`` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.config import NodeConfig
from gateway.demo_data import seed_licenses
from gateway.exchange.catalog import load_catalog
from gateway.keys import load_token_key
from gateway.licenses.issuing import change_status, mint_license_qr
from gateway.licenses.policy import PurposePolicy
from gateway.licenses.samples import sample_licenses
from gateway.licenses.store import LicenseStore, license_db_path

BUSINESS = "11100000MB0341032Y001"
DISABILITY = "111000000000179619001"


@dataclass(frozen=True)
class Sample:
    identifier: str
    type_code: str
    holder_id: str
    holder_name: str
    status: str


def seed(cfg: NodeConfig) -> list[Sample]:
    """Quzhou's demo licenses in its register (valid, revoked, suspended, expired ...)."""
    seed_licenses(cfg)
    out = []
    for s in sample_licenses(cfg):
        doc = s.document
        out.append(
            Sample(
                identifier=doc["identifier"],
                type_code=doc["type_code"],
                holder_id=doc["holder"]["id"],
                holder_name=doc["holder"]["name"],
                status=s.status.status,
            )
        )
    return out


def pick(samples: list[Sample], type_code: str, status: str) -> Sample:
    return next(s for s in samples if s.type_code == type_code and s.status == status)


def mint(cfg: NodeConfig, identifier: str, *, minted_at: float | None = None) -> str:
    """A 亮证码 ``TB1:...`` for a license ``cfg``'s city issued (all fields consented)."""
    store = LicenseStore(license_db_path(cfg))
    try:
        return mint_license_qr(
            store.get(identifier),
            load_token_key(cfg),
            node_id=cfg.id,
            policy=PurposePolicy(load_catalog(cfg.catalog_path)),
            now=time.time() if minted_at is None else minted_at,
        )
    finally:
        store.close()


def license_jws(cfg: NodeConfig, identifier: str) -> str:
    """The signed license itself (what a license file holds)."""
    store = LicenseStore(license_db_path(cfg))
    try:
        stored = store.get(identifier)
        assert stored is not None
        return stored.jws
    finally:
        store.close()


def revoke(cfg: NodeConfig, identifier: str, reason: str) -> None:
    store = LicenseStore(license_db_path(cfg))
    try:
        change_status(store, identifier, "revoked", reason=reason)
    finally:
        store.close()
