"""The license service in-process at the issuing node: requests, QR consent, disclosure.

These run ``LicenseService`` exactly as the node, the CLI and the desk do, on real
stores in the test's tree; the HTTP-level behaviour is in tests/integration.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.demo_data import seed_licenses
from gateway.errors import NotFound, ValidationFailed
from gateway.keys import load_token_key
from gateway.licenses.checks import HolderClaim
from gateway.licenses.errors import ConsentRefused
from gateway.licenses.identifiers import make_license_identifier, parse_license_identifier
from gateway.licenses.issuing import change_status
from gateway.licenses.qr import mint_qr
from gateway.licenses.samples import sample_licenses
from gateway.licenses.service import (
    LicenseService,
    VerifyRequest,
    open_license_service,
    read_verify_request,
)
from gateway.licenses.store import LicenseStore, license_db_path
from gateway.tokens.mint import SigningKey
from tests.licenses.factory import HOLDER_ID, JIAN_USCC, OTHER_ID, QUZHOU_USCC
from tests.support.network import Tree

QUZHOU = "cn-330800"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def service(tree: Tree, clock: Clock) -> AsyncIterator[LicenseService]:
    seed_licenses(tree.config(QUZHOU))
    async with open_license_service(tree.config(QUZHOU), clock=clock) as svc:
        yield svc


def disability(tree: Tree) -> tuple[str, str]:
    """(identifier, holder id) of Quzhou's valid, unexpired disability certificate."""
    for s in sample_licenses(tree.config(QUZHOU)):
        d = s.document
        if (
            d["type_name"].endswith("残疾人证")
            and d["valid_until"] > "2027"
            and s.status.status == "valid"
        ):
            return d["identifier"], d["holder"]["id"]
    raise AssertionError("no such sample")


BAD_BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "neither": ({}, "license"),
    "both": ({"license": "a.b.c", "qr": "TB1:a.b.c"}, "license"),
    "license not text": ({"license": 5}, "license"),
    "unknown member": ({"license": "a.b.c", "purpse": "x"}, "purpse"),
    "holder and holder_id": (
        {"license": "a", "holder": {"id": HOLDER_ID}, "holder_id": HOLDER_ID},
        "holder",
    ),
    "holder not an object": ({"license": "a", "holder": HOLDER_ID}, "holder"),
    "holder with extra members": (
        {"license": "a", "holder": {"id": HOLDER_ID, "name": "x"}},
        "holder",
    ),
    "holder id type unknown": (
        {"license": "a", "holder": {"id": HOLDER_ID, "id_type": "9"}},
        "holder.id_type",
    ),
    "holder id check character": ({"license": "a", "holder_id": HOLDER_ID[:-1] + "0"}, "holder_id"),
    "holder id of the wrong type": (
        {"license": "a", "holder": {"id": HOLDER_ID, "id_type": "001"}},
        "holder.id",
    ),
    "purpose not text": ({"license": "a", "purpose": 7}, "purpose"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_verify_requests_name_the_field_and_never_echo_an_id(case: str) -> None:
    body, field = BAD_BODIES[case]
    with pytest.raises(ValidationFailed) as caught:
        read_verify_request(body)
    assert caught.value.code == "validation_failed"
    assert field in caught.value.fields, caught.value.fields
    assert HOLDER_ID[6:14] not in caught.value.detail + str(caught.value.fields)


def test_a_good_request_is_read_into_a_value() -> None:
    got = read_verify_request(
        {"qr": "TB1:x", "holder": {"id_type": "111", "id": HOLDER_ID.lower()}}
    )
    assert got == VerifyRequest(qr="TB1:x", holder=HolderClaim(HOLDER_ID, "111"))
    assert read_verify_request({"license": "x", "holder_id": QUZHOU_USCC}).holder == HolderClaim(
        QUZHOU_USCC
    )


async def test_unknown_purposes_and_non_jws_licenses_are_bad_requests(
    service: LicenseService,
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await service.verify(VerifyRequest(license="a.b.c", purpose="TB-000000-0000"))
    assert "purpose" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        await service.verify(VerifyRequest(license="not a jws"))
    assert "license" in caught.value.fields


async def test_the_issuer_verifies_its_own_license_against_its_register(
    service: LicenseService, tree: Tree
) -> None:
    identifier, holder = disability(tree)
    jws = (await service.store.get(identifier)).jws  # type: ignore[union-attr]
    verdict = await service.verify(VerifyRequest(license=jws, holder=HolderClaim(holder)))
    assert verdict.verdict == "valid", verdict.checks
    assert verdict.check("status").detail == "valid according to cn-330800"  # type: ignore[union-attr]
    assert verdict.license["holder.id"] == holder
    store = LicenseStore(license_db_path(tree.config(QUZHOU)))
    change_status(store, identifier, "suspended", reason="核查")
    store.close()
    verdict = await service.verify(VerifyRequest(license=jws, holder=HolderClaim(OTHER_ID)))
    assert (verdict.verdict, verdict.reasons) == ("invalid", ("suspended", "holder_mismatch"))


async def test_qr_consent_narrows_what_is_shown_and_works_once(
    service: LicenseService, tree: Tree
) -> None:
    identifier, holder = disability(tree)
    qr = await service.mint_qr(identifier, fields=["holder"])
    verdict = await service.verify(VerifyRequest(qr=qr, purpose="TB-360800-0302"))
    assert verdict.verdict == "valid", verdict.checks
    assert verdict.source == "qr"
    assert verdict.license == {
        "identifier": identifier,
        "holder.name": verdict.license["holder.name"],
        "holder.id": holder,
    }
    again = await service.verify(VerifyRequest(qr=qr))
    assert (again.verdict, again.reasons) == ("invalid", ("qr_replayed",))
    assert again.license == {}
    with pytest.raises(ConsentRefused) as caught:  # the issuer's own single-use claim
        await service.fetch(qr)
    assert caught.value.reason == "qr_replayed"
    assert caught.value.extra == {"reason": "qr_replayed"}


async def test_a_refused_purpose_does_not_fetch_or_use_up_the_qr(
    service: LicenseService, tree: Tree
) -> None:
    identifier, _ = disability(tree)
    qr = await service.mint_qr(identifier)
    verdict = await service.verify(VerifyRequest(qr=qr, purpose="TB-330800-0501"))
    assert verdict.reasons == ("purpose_not_allowed",)
    assert verdict.check("fetch").result == "unknown"  # type: ignore[union-attr]
    assert (await service.fetch(qr)).identifier == identifier


async def test_qr_tokens_the_issuer_refuses(
    service: LicenseService, tree: Tree, clock: Clock
) -> None:
    identifier, _ = disability(tree)
    stored = await service.store.get(identifier)
    assert stored is not None
    own = load_token_key(tree.config(QUZHOU))
    stranger = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))

    def qr(key: SigningKey = own, **over: Any) -> str:
        claims: dict[str, Any] = {
            "iss": QUZHOU,
            "lid": identifier,
            "ldh": stored.digest,
            "sco": ["*"],
        }
        claims.update(over)
        return mint_qr(key, now=clock.now, **claims)

    refusals = {
        "signed by a stranger": (qr(stranger), "signature_invalid"),
        "another node's iss": (qr(iss="cn-360800"), "signature_invalid"),
        "expired": (qr(now=clock.now - 400) if False else None, "qr_expired"),
    }
    for text, reason in refusals.values():
        if text is None:
            continue
        with pytest.raises(ConsentRefused) as caught:
            await service.fetch(text)
        assert caught.value.reason == reason
    old = mint_qr(
        own, iss=QUZHOU, lid=identifier, ldh=stored.digest, sco=["*"], now=clock.now - 400
    )
    with pytest.raises(ConsentRefused) as caught:
        await service.fetch(old)
    assert caught.value.reason == "qr_expired"
    unknown = identifier.replace(identifier.split(".")[-3], "2099999")
    with pytest.raises(NotFound):
        await service.fetch(qr(lid=unknown))


async def test_the_verifier_checks_the_qr_before_asking_anyone(
    service: LicenseService, tree: Tree, clock: Clock
) -> None:
    identifier, _ = disability(tree)
    stored = await service.store.get(identifier)
    assert stored is not None
    own = load_token_key(tree.config(QUZHOU))
    base: dict[str, Any] = {"iss": QUZHOU, "lid": identifier, "ldh": stored.digest, "sco": ["*"]}
    ident = parse_license_identifier(identifier)
    cases = {
        "expired": (mint_qr(own, **base, now=clock.now - 400), "qr_validity", "qr_expired"),
        "from a stranger": (
            mint_qr(SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1())), **base),
            "qr",
            "signature_invalid",
        ),
        "with a malformed lid": (
            mint_qr(
                own, **{**base, "lid": identifier[:-1] + ("0" if identifier[-1] != "0" else "1")}
            ),
            "qr",
            "identifier_invalid",
        ),
        "for a license Quzhou does not answer for": (
            mint_qr(
                own,
                **{**base, "lid": make_license_identifier(ident.type_code, JIAN_USCC, "2400001")},
            ),
            "qr",
            "issuer_mismatch",
        ),
    }
    for text, check, code in cases.values():
        verdict = await service.verify(VerifyRequest(qr=text))
        row = verdict.check(check)
        assert row is not None and (row.result, row.code) == ("fail", code), verdict.checks
        assert verdict.verdict == "invalid" and verdict.license == {}
    # the clock the service was given decides expiry: two minutes on, a fresh QR is stale
    fresh = await service.mint_qr(identifier)
    clock.now += 200
    verdict = await service.verify(VerifyRequest(qr=fresh))
    assert verdict.reasons == ("qr_expired",)
