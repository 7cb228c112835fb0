"""Seeding the demo: once, with the intended statuses, and re-signed after new certificates."""

from __future__ import annotations

import shutil
from datetime import datetime

from gateway.config import DEMO_NODE_IDS
from gateway.demo_data import seed_demo, seed_licenses
from gateway.keys import init_demo_pki, load_issuer
from gateway.licenses.checks import CHINA_TZ, examine_license
from gateway.licenses.license_jws import parse_license_jws, sign_license, x5c_of
from gateway.licenses.samples import sample_licenses, sample_statuses
from gateway.licenses.store import LicenseStore, license_db_path
from gateway.licenses.trust import TrustStore
from tests.support.network import Tree

QUZHOU, LONGYAN = "cn-330800", "cn-350800"


def test_seeding_is_idempotent_and_keeps_what_operators_changed(tree: Tree) -> None:
    cfg = tree.config(QUZHOU)
    assert seed_licenses(cfg) == len(sample_licenses(cfg)) == 11
    store = LicenseStore(license_db_path(cfg))
    stored = {s.identifier: s for s in store.list()}
    assert {i: s.status.status for i, s in stored.items()} == {
        i: s.status for i, s in sample_statuses(cfg).items()
    }
    some = next(i for i, s in stored.items() if s.status.status == "valid")
    store.set_status(some, "revoked", reason="operator", since="2026-11-23T00:00:00Z")
    store.close()
    assert seed_licenses(cfg) == 0
    store = LicenseStore(license_db_path(cfg))
    assert store.status(some).status == "revoked"
    assert store.get(some).jws == stored[some].jws  # type: ignore[union-attr]
    store.close()


def test_simulated_cities_are_left_to_their_simulators(tree: Tree) -> None:
    seed_demo([tree.config(LONGYAN), tree.config(QUZHOU)])
    assert not license_db_path(tree.config(LONGYAN)).exists()
    assert license_db_path(tree.config(QUZHOU)).exists()


def test_samples_are_signed_again_after_new_issuer_certificates(tree: Tree) -> None:
    cfg = tree.config(QUZHOU)
    seed_licenses(cfg)
    shutil.rmtree(tree.certs / QUZHOU)  # as after `certs init --force` for this city
    init_demo_pki([cfg], tree.certs)
    assert seed_licenses(cfg) == 11
    current = x5c_of(load_issuer(cfg))
    store = LicenseStore(license_db_path(cfg))
    for stored in store.list():
        assert parse_license_jws(stored.jws).header["x5c"] == current
    store.close()


def test_every_citys_demo_licenses_verify_as_intended_with_the_demo_pki(tree: Tree) -> None:
    trust = TrustStore.from_dir(tree.certs / "trust")
    today = datetime.now(CHINA_TZ).date()
    for node_id in DEMO_NODE_IDS:
        cfg = tree.config(node_id)
        issuer = load_issuer(cfg)
        for sample in sample_licenses(cfg):
            jws = parse_license_jws(sign_license(issuer, sample.document).jws)
            exam = examine_license(jws, trust, today=today)
            assert exam.authentic, (node_id, [c for c in exam.checks if c.result != "pass"])
            until = sample.document["valid_until"]
            expected = (
                ("fail", "expired") if until and until < today.isoformat() else ("pass", None)
            )
            validity = exam.checks[-1]
            assert (validity.result, validity.code) == expected, (node_id, validity)
