"""Demo data seeding: the licenses of every Tongban city of the demo network.

``tongban demo`` calls ``seed_demo`` before it starts the nodes. Each Tongban node
(not the legacy-partner simulators, which seed themselves) gets its city's sample
licenses (``gateway.licenses.samples``) signed by its issuing authority and recorded
in its register with their intended status — two expired, one revoked, one suspended.

Idempotent: a license already in the register is kept as it is, status included, so
what an operator revoked stays revoked across restarts. The one exception is a sample
whose signature was made with an issuer certificate that is no longer the node's
(after ``tongban certs init --force``): it is signed again with the current one, since
every verifier would otherwise report the demo's own licenses as untrusted.
"""

from __future__ import annotations

from gateway.config import NodeConfig
from gateway.keys import load_issuer
from gateway.licenses.document import read_document
from gateway.licenses.license_jws import parse_license_jws, sign_license, x5c_of
from gateway.licenses.samples import sample_licenses
from gateway.licenses.store import LicenseStore, license_db_path

__all__ = ["seed_demo", "seed_licenses"]


def seed_licenses(cfg: NodeConfig) -> int:
    """Put ``cfg``'s sample licenses in its register; returns how many were written."""
    issuer = load_issuer(cfg)
    current_chain = x5c_of(issuer)
    store = LicenseStore(license_db_path(cfg))
    written = 0
    try:
        for sample in sample_licenses(cfg):
            identifier = sample.document["identifier"]
            stored = store.get(identifier)
            if stored is None:
                signed = sign_license(issuer, sample.document)
                store.add(
                    signed,
                    read_document(sample.document),
                    serial=sample.serial,
                    since=sample.status.since or "",
                    status=sample.status.status,
                    reason=sample.status.reason,
                )
                written += 1
            elif parse_license_jws(stored.jws).header.get("x5c") != current_chain:
                store.replace_signature(sign_license(issuer, sample.document))
                written += 1
    finally:
        store.close()
    return written


def seed_demo(configs: list[NodeConfig]) -> None:
    """Seed each Tongban node of the demo network once; simulators seed themselves."""
    for cfg in configs:
        if cfg.simulator is None:
            seed_licenses(cfg)
