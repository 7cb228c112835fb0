"""``tongban certs init``: the SPEC 9 layout, idempotent, private keys 0600."""

from __future__ import annotations

import stat

from cryptography import x509
from cryptography.x509.oid import NameOID

from gateway.config import DEMO_NODE_IDS, load_node_config
from gateway.keys import init_demo_pki, load_trust_anchors
from tests.support.network import Tree, make_tree


def test_layout_modes_and_idempotence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tree: Tree = make_tree(tmp_path)
    certs = tree.certs
    for node in DEMO_NODE_IDS:
        for name in (
            "token.key.pem",
            "token.pub.pem",
            "log.key.pem",
            "log.vkey",
            "issuer.key.pem",
            "issuer.cert.pem",
        ):
            assert (certs / node / name).is_file(), f"{node}/{name}"
        for key in ("token.key.pem", "log.key.pem", "issuer.key.pem"):
            assert stat.S_IMODE((certs / node / key).stat().st_mode) == 0o600
        vkey = (certs / node / "log.vkey").read_text().strip()
        assert vkey.startswith(f"tongban/{node}/audit+")
    assert {p.stem for p in (certs / "trust").glob("*.pem")} == {
        "jiangxi",
        "zhejiang",
        "fujian",
        "hunan",
        "neimenggu",
    }

    configs = [load_node_config(tree.config_path(n)) for n in DEMO_NODE_IDS]
    before = (certs / "cn-360800" / "token.key.pem").read_bytes()
    assert init_demo_pki(configs, certs) == []
    assert (certs / "cn-360800" / "token.key.pem").read_bytes() == before
    made = init_demo_pki(configs, certs, force=True)
    assert certs / "cn-360800" / "token.key.pem" in made
    assert (certs / "cn-360800" / "token.key.pem").read_bytes() != before


def test_issuer_certificate_carries_uscc_and_chains(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tree = make_tree(tmp_path)
    cfg = load_node_config(tree.config_path("cn-330800"))
    cert = x509.load_pem_x509_certificate(
        (tree.certs / "cn-330800" / "issuer.cert.pem").read_bytes()
    )
    serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert serial == cfg.issuer_uscc
    anchors = {a.subject: a for a in load_trust_anchors(tree.certs / "trust")}
    root = anchors[cert.issuer]
    cert.verify_directly_issued_by(root)
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
