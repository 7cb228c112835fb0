"""Chains to the provincial roots (SPEC 4.3), and the caches that keep them cheap."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.keys import Issuer
from gateway.licenses.trust import TrustStore, UntrustedChain
from tests.licenses.factory import issuer_under, make_ca, new_pki


def ders(issuer: Issuer) -> tuple[bytes, ...]:
    return tuple(c.public_bytes(Encoding.DER) for c in issuer.chain)


def test_a_chain_through_an_intermediate_is_trusted() -> None:
    pki = new_pki()
    ca, ca_key = make_ca(pki.root, pki.root_key, path_length=0)
    chain = pki.trust().chain(ders(issuer_under(ca, ca_key)))
    assert [c.subject for c in chain.path] == [chain.leaf.subject, ca.subject, pki.root.subject]


def test_the_root_may_be_sent_along_but_only_the_local_copy_counts() -> None:
    pki = new_pki()
    ca, ca_key = make_ca(pki.root, pki.root_key)
    assert pki.trust().chain(ders(issuer_under(ca, ca_key, pki.root))).path[-1] == pki.root
    stranger = new_pki()  # same province name, so the same subject as our root
    ca_s, key_s = make_ca(stranger.root, stranger.root_key)
    with pytest.raises(UntrustedChain, match="trusted provincial root"):
        pki.trust().chain(ders(issuer_under(ca_s, key_s, stranger.root)))


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"ca": False}, "not a CA"),
        ({"critical_unknown": True}, "critical extension"),
    ],
)
def test_a_bad_intermediate_is_refused(kwargs: dict[str, bool], reason: str) -> None:
    pki = new_pki()
    ca, ca_key = make_ca(pki.root, pki.root_key, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UntrustedChain, match=reason):
        pki.trust().chain(ders(issuer_under(ca, ca_key)))


def test_path_length_constraints_hold() -> None:
    pki = new_pki()  # the demo roots allow one intermediate (pathlen 1)
    ca1, key1 = make_ca(pki.root, pki.root_key, path_length=1)
    ca2, key2 = make_ca(ca1, key1, path_length=0)
    with pytest.raises(UntrustedChain, match="path length"):
        pki.trust().chain(ders(issuer_under(ca2, key2, ca1)))


def test_an_issuer_certificate_must_not_be_a_ca() -> None:
    pki = new_pki()
    ca, _ = make_ca(pki.root, pki.root_key)
    with pytest.raises(UntrustedChain, match="not an end-entity"):
        pki.trust().chain((ca.public_bytes(Encoding.DER),))


def test_garbage_is_untrusted_not_a_crash() -> None:
    with pytest.raises(UntrustedChain, match="not a DER"):
        new_pki().trust().chain((b"not a certificate",))


def test_parsed_certificates_and_chain_results_are_cached() -> None:
    pki = new_pki()
    trust = TrustStore([pki.root])
    chain_ders = ders(pki.issuer())
    first = trust.chain(chain_ders)
    assert trust.chain(chain_ders) is first
    assert trust.certificate(chain_ders[0]) is trust.certificate(chain_ders[0])
    bad = ders(new_pki().issuer())
    for _ in range(2):  # a refused chain is remembered too, so replaying it costs nothing
        with pytest.raises(UntrustedChain):
            trust.chain(bad)
