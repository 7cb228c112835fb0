"""E-licenses through the HTTP API of running nodes (SPEC 4, 7).

Quzhou (cn-330800) issues; Ji'an (cn-360800) verifies, asking Quzhou live for status
and for the license behind a 亮证码. Every case checks the verdict, the reason and the
check row that failed; every bad request checks its exact error code.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.audit.entry import parse_entry
from gateway.config import NodeConfig
from gateway.demo_data import seed_licenses
from gateway.encoding import b64u_encode
from gateway.exchange.catalog import load_catalog
from gateway.http.client import PartnerClient, PartnerResponse
from gateway.http.context import AUDIT
from gateway.keys import Issuer, load_issuer, load_token_key, make_issuer_cert
from gateway.licenses.identifiers import make_license_identifier
from gateway.licenses.issuing import change_status, issue_license
from gateway.licenses.license_jws import sign_license
from gateway.licenses.qr import mint_qr
from gateway.licenses.samples import DISABILITY_CERTIFICATE
from gateway.licenses.service import LICENSES
from gateway.licenses.store import LicenseStore, license_db_path
from gateway.tokens.mint import SigningKey
from tests.licenses.factory import (
    HOLDER_ID,
    JIAN_USCC,
    OTHER_ID,
    document,
    new_pki,
    swap_signature,
    tamper_payload,
)
from tests.support.network import Network, Tree

pytestmark = pytest.mark.timeout(60)

JIAN, QUZHOU = "cn-360800", "cn-330800"
RENEWAL = "TB-360800-0302"  # 残疾人证换领: may read disability certificates
MORTGAGE = "TB-330800-0501"  # 不动产抵押权注销: real-estate certificates only
TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()


@dataclass
class Cities:
    """Quzhou's register and keys, and callers in both directions."""

    tree: Tree
    network: Network
    quzhou: NodeConfig
    issuer: Issuer
    to_jian: PartnerClient  # Quzhou's system calling Ji'an
    to_quzhou: PartnerClient  # Ji'an's system calling Quzhou

    def issue(self, **draft: Any) -> tuple[str, str]:
        """Issue a disability certificate at Quzhou; returns (identifier, JWS)."""
        body: dict[str, Any] = {
            "type_code": DISABILITY_CERTIFICATE[0],
            "holder": {"name": "张秀英", "id": HOLDER_ID},
            "valid_until": (TODAY + dt.timedelta(days=3000)).isoformat(),
            "data": {"disability_category": "肢体残疾", "disability_level": "二级"},
        }
        body.update(draft)
        store = LicenseStore(license_db_path(self.quzhou))
        try:
            signed, _ = issue_license(
                store,
                self.issuer,
                body,
                cfg=self.quzhou,
                catalog=load_catalog(self.quzhou.catalog_path),
                today=TODAY,
            )
        finally:
            store.close()
        return signed.identifier, signed.jws

    def set_status(self, identifier: str, status: str) -> None:
        store = LicenseStore(license_db_path(self.quzhou))
        try:
            change_status(store, identifier, status, reason="测试")  # type: ignore[arg-type]
        finally:
            store.close()

    def qr(self, identifier: str, jws_digest: str, **over: Any) -> str:
        claims: dict[str, Any] = {"iss": QUZHOU, "lid": identifier, "ldh": jws_digest, "sco": ["*"]}
        claims.update(over)
        key = claims.pop("key", load_token_key(self.quzhou))
        return mint_qr(key, **claims)

    async def verify(self, **body: Any) -> tuple[int, dict[str, Any]]:
        resp = await self.to_jian.call("POST", "/v1/licenses/verify", json_body=body)
        return resp.status, json.loads(resp.body)


def digest_of(cities: Cities, identifier: str) -> str:
    store = LicenseStore(license_db_path(cities.quzhou))
    try:
        stored = store.get(identifier)
        assert stored is not None
        return stored.digest
    finally:
        store.close()


@pytest.fixture
async def cities(tree: Tree, network: Network) -> AsyncIterator[Cities]:
    quzhou, jian = tree.config(QUZHOU), tree.config(JIAN)
    seed_licenses(quzhou)
    q_key, j_key = load_token_key(quzhou), load_token_key(jian)
    to_jian = PartnerClient(node_id=QUZHOU, partner_id=JIAN, base_url=jian.public_url, key=q_key)
    to_quzhou = PartnerClient(
        node_id=JIAN, partner_id=QUZHOU, base_url=quzhou.public_url, key=j_key
    )
    try:
        yield Cities(tree, network, quzhou, load_issuer(quzhou), to_jian, to_quzhou)
    finally:
        await to_jian.close()
        await to_quzhou.close()


def row(verdict: dict[str, Any], name: str) -> tuple[str, str | None]:
    [found] = [c for c in verdict["checks"] if c["name"] == name]
    return found["result"], found["code"]


# ---------------------------------------------------------------- license verdicts


def _expired_issuer(c: Cities) -> Issuer:
    """Quzhou's authority with a certificate from the real Zhejiang root that ran out."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    root_key = serialization.load_pem_private_key(
        (c.tree.certs / "ca" / "zhejiang.key.pem").read_bytes(), password=None
    )
    root = x509.load_pem_x509_certificate((c.tree.certs / "trust" / "zhejiang.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_issuer_cert(
        uscc=c.quzhou.issuer_uscc,
        name=c.quzhou.issuer_name,
        public_key=key.public_key(),
        root=root,
        root_key=root_key,  # type: ignore[arg-type]
        not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2022, 12, 31, tzinfo=dt.UTC),
    )
    return Issuer(c.quzhou.issuer_uscc, c.quzhou.issuer_name, key, (cert,))


Case = Callable[[Cities], dict[str, Any]]


def _license(make: Callable[[Cities], str], **extra: Any) -> Case:
    return lambda c: {"license": make(c), **extra}


def _registered(**draft: Any) -> Callable[[Cities], str]:
    return lambda c: c.issue(**draft)[1]


def _with_status(status: str) -> Callable[[Cities], str]:
    def make(c: Cities) -> str:
        identifier, jws = c.issue()
        c.set_status(identifier, status)
        return jws

    return make


# name -> (request body, expected verdict, failing check, reason)
CASES: dict[str, tuple[Case, str, str, str]] = {
    "tampered payload byte": (
        _license(lambda c: tamper_payload(c.issue()[1])),
        "invalid",
        "signature",
        "signature_invalid",
    ),
    "swapped signature": (
        _license(lambda c: swap_signature(c.issue()[1], c.issue()[1])),
        "invalid",
        "signature",
        "signature_invalid",
    ),
    "certificate from an untrusted root": (
        _license(
            lambda c: sign_license(new_pki().issuer(uscc=c.quzhou.issuer_uscc), document()).jws
        ),
        "invalid",
        "chain",
        "chain_untrusted",
    ),
    "expired issuer certificate": (
        _license(lambda c: sign_license(_expired_issuer(c), document(issued_on="2024-03-01")).jws),
        "invalid",
        "certificate",
        "cert_expired",
    ),
    "issuer USCC not the certificate's": (
        _license(lambda c: sign_license(c.issuer, document(uscc=JIAN_USCC)).jws),
        "invalid",
        "issuer",
        "issuer_mismatch",
    ),
    "not yet valid": (
        _license(_registered(valid_from=(TODAY + dt.timedelta(days=30)).isoformat())),
        "invalid",
        "validity",
        "not_yet_valid",
    ),
    "expired": (
        _license(_registered(issued_on="2015-05-05", valid_until="2025-05-04")),
        "invalid",
        "validity",
        "expired",
    ),
    "revoked": (_license(_with_status("revoked")), "invalid", "status", "revoked"),
    "suspended": (_license(_with_status("suspended")), "invalid", "status", "suspended"),
    "never issued": (
        _license(lambda c: sign_license(c.issuer, document(serial="2099999")).jws),
        "invalid",
        "status",
        "not_issued",
    ),
    "holder mismatch": (
        _license(_registered(), holder={"id_type": "111", "id": OTHER_ID}),
        "invalid",
        "holder",
        "holder_mismatch",
    ),
    "purpose not allowed": (
        _license(_registered(), purpose=MORTGAGE),
        "invalid",
        "purpose",
        "purpose_not_allowed",
    ),
}


async def test_each_bad_license_gets_its_verdict_reason_and_check_row(
    cities: Cities, subtests: pytest.Subtests
) -> None:
    await cities.network.start(QUZHOU)
    await cities.network.start(JIAN)
    for name, (make, verdict, check, reason) in CASES.items():
        with subtests.test(msg=name):
            status, body = await cities.verify(**make(cities))
            assert status == 200, body
            assert body["verdict"] == verdict, body["checks"]
            assert reason in body["reasons"]
            assert row(body, check) == ("fail", reason)
            assert [e["code"] for e in body["explanations"]] == body["reasons"]
            if check not in ("status", "validity"):  # authentic, the holder's: still shown
                assert body["license"] == {}
    with subtests.test(msg="a good license with holder and purpose"):
        identifier, jws = cities.issue()
        status, body = await cities.verify(license=jws, holder_id=HOLDER_ID, purpose=RENEWAL)
        assert (status, body["verdict"], body["reasons"]) == (200, "valid", [])
        assert {r[0] for r in (row(body, c["name"]) for c in body["checks"])} == {"pass"}
        assert body["license"]["identifier"] == identifier
        assert body["license"]["data.disability_level"] == "二级"


async def test_issuer_down_is_undetermined_never_revoked_or_valid(cities: Cities) -> None:
    identifier, jws = cities.issue()
    cities.set_status(identifier, "revoked")  # even a revoked license: nobody can say so now
    await cities.network.start(JIAN)  # Quzhou is not running
    status, body = await cities.verify(license=jws)
    assert status == 200
    assert (body["verdict"], body["reasons"]) == ("undetermined", ["status_unknown"])
    assert row(body, "status") == ("unknown", "status_unknown")
    assert body["explanations"][0]["next_en"].startswith("Try again later")


async def test_status_is_live_from_quzhou_and_cached_for_the_window(cities: Cities) -> None:
    identifier, jws = cities.issue()
    await cities.network.start(QUZHOU)
    await cities.network.start(JIAN)
    resolver = cities.network.runners[JIAN].app[LICENSES].statuses
    now = [1000.0]
    resolver.clock = lambda: now[0]
    assert resolver.ttl == 60
    assert (await cities.verify(license=jws))[1]["verdict"] == "valid"
    cities.set_status(identifier, "revoked")  # at Quzhou, the issuing city
    _, cached = await cities.verify(license=jws)
    assert cached["verdict"] == "valid"  # within the cache window
    assert "(cached)" in next(c for c in cached["checks"] if c["name"] == "status")["detail"]
    now[0] += 61
    _, fresh = await cities.verify(license=jws)
    assert (fresh["verdict"], fresh["reasons"]) == ("invalid", ["revoked"])
    assert row(fresh, "status") == ("fail", "revoked")


async def test_the_calls_jian_sends_to_the_issuer_are_audited(cities: Cities) -> None:
    """SPEC 6: every request a node sends is an entry, not only the ones it serves."""
    identifier, _ = cities.issue()
    digest = digest_of(cities, identifier)
    await cities.network.start(QUZHOU)
    await cities.network.start(JIAN)
    _, body = await cities.verify(qr=cities.qr(identifier, digest))
    assert body["verdict"] == "valid"
    log = cities.network.runners[JIAN].app[AUDIT]
    sent = []
    async for _, data in log.iter_entries():
        entry = parse_entry(data)
        if entry.event in ("license.fetch_request", "license.status_request"):
            sent.append((entry.event, entry.actor.type, entry.actor.id, entry.outcome,
                         entry.meta["partner"]))  # fmt: skip
    assert sent == [
        ("license.fetch_request", "system", JIAN, "ok", QUZHOU),
        ("license.status_request", "system", JIAN, "ok", QUZHOU),
    ]
    status_entry = [parse_entry(d) async for _, d in log.iter_entries()]
    pseudonym = log.pseudonym(identifier)
    assert any(e.event == "license.status_request" and e.subject == pseudonym
               for e in status_entry)  # fmt: skip


# ---------------------------------------------------------------- 亮证码


async def test_a_qr_code_from_quzhou_verified_at_jian_shows_only_what_was_consented(
    cities: Cities,
) -> None:
    identifier, _ = cities.issue()
    await cities.network.start(QUZHOU)
    await cities.network.start(JIAN)
    qr = await cities.network.runners[QUZHOU].app[LICENSES].mint_qr(identifier, fields=["data"])
    status, body = await cities.verify(qr=qr, purpose=RENEWAL, holder_id=HOLDER_ID)
    assert (status, body["verdict"]) == (200, "valid"), body["checks"]
    assert [c["name"] for c in body["checks"]][:4] == ["qr", "qr_validity", "fetch", "digest"]
    assert body["license"] == {
        "identifier": identifier,
        "data.disability_category": "肢体残疾",
        "data.disability_level": "二级",
    }


async def test_qr_failures_get_their_reason_and_check_row(
    cities: Cities, subtests: pytest.Subtests
) -> None:
    identifier, _ = cities.issue()
    digest = digest_of(cities, identifier)
    await cities.network.start(QUZHOU)
    await cities.network.start(JIAN)
    with subtests.test(msg="QR expired"):
        old = cities.qr(identifier, digest, now=time.time() - 400)
        _, body = await cities.verify(qr=old)
        assert (body["verdict"], body["reasons"]) == ("invalid", ["qr_expired"])
        assert row(body, "qr_validity") == ("fail", "qr_expired")
    with subtests.test(msg="QR used twice"):
        qr = cities.qr(identifier, digest)
        _, first = await cities.verify(qr=qr)
        _, second = await cities.verify(qr=qr)
        assert first["verdict"] == "valid"
        assert (second["verdict"], second["reasons"]) == ("invalid", ["qr_replayed"])
        assert row(second, "fetch") == ("fail", "qr_replayed")
        assert second["license"] == {}
    with subtests.test(msg="license digest not the QR's"):
        wrong = cities.qr(identifier, b64u_encode(bytes(32)))
        _, body = await cities.verify(qr=wrong)
        assert (body["verdict"], body["reasons"]) == ("invalid", ["digest_mismatch"])
        assert row(body, "digest") == ("fail", "digest_mismatch")
        assert body["license"] == {}
    with subtests.test(msg="QR for a license Quzhou never issued"):
        lid = make_license_identifier(
            DISABILITY_CERTIFICATE[0], cities.quzhou.issuer_uscc, "2099998"
        )
        _, body = await cities.verify(qr=cities.qr(lid, digest))
        assert (body["verdict"], body["reasons"]) == ("invalid", ["not_issued"])
        assert row(body, "fetch") == ("fail", "not_issued")
    with subtests.test(msg="QR signed by a key nobody registered"):
        stranger = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
        _, body = await cities.verify(qr=cities.qr(identifier, digest, key=stranger))
        assert (body["verdict"], body["reasons"]) == ("invalid", ["signature_invalid"])
        assert row(body, "qr") == ("fail", "signature_invalid")


async def test_a_qr_code_already_used_elsewhere_is_replayed_not_undetermined(
    cities: Cities,
) -> None:
    """The issuer's refusal of spent consent is an answer: qr_replayed, not an outage."""
    identifier, _ = cities.issue()
    digest = digest_of(cities, identifier)
    await cities.network.start(QUZHOU)
    await cities.network.start(JIAN)
    qr = cities.qr(identifier, digest)
    used = await cities.to_quzhou.call("POST", "/v1/licenses/fetch", json_body={"qr": qr})
    assert used.status == 200  # spent at another city's desk first
    _, body = await cities.verify(qr=qr)
    assert (body["verdict"], body["reasons"]) == ("invalid", ["qr_replayed"])
    assert row(body, "fetch") == ("fail", "qr_replayed")


async def test_quzhou_hands_over_a_license_once_per_qr_code(cities: Cities) -> None:
    identifier, jws = cities.issue()
    digest = digest_of(cities, identifier)
    await cities.network.start(QUZHOU)
    fetch = cities.to_quzhou.call
    qr = cities.qr(identifier, digest)
    first = await fetch("POST", "/v1/licenses/fetch", json_body={"qr": qr})
    assert (first.status, json.loads(first.body)) == (200, {"license": jws})
    assert first.headers["Tongban-Audit"].startswith("seq=")
    refusals = {
        "used twice": ({"qr": qr}, 403, "forbidden", "qr_replayed"),
        "expired": (
            {"qr": cities.qr(identifier, digest, now=time.time() - 400)},
            403,
            "forbidden",
            "qr_expired",
        ),
        "not Quzhou's key": (
            {
                "qr": cities.qr(
                    identifier,
                    digest,
                    key=SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1())),
                )
            },
            403,
            "forbidden",
            "signature_invalid",
        ),
        "never issued": (
            {
                "qr": cities.qr(
                    make_license_identifier(
                        DISABILITY_CERTIFICATE[0], cities.quzhou.issuer_uscc, "2099997"
                    ),
                    digest,
                )
            },
            404,
            "not_found",
            None,
        ),
        "not a QR code": ({"qr": "hello"}, 400, "validation_failed", None),
        "unknown member": ({"qr": qr, "extra": 1}, 400, "validation_failed", None),
    }
    for name, (body, status, code, reason) in refusals.items():
        resp = await fetch("POST", "/v1/licenses/fetch", json_body=body)
        problem = json.loads(resp.body)
        assert (resp.status, problem["code"], problem.get("reason")) == (status, code, reason), name
    bad_json = await fetch("POST", "/v1/licenses/fetch", body=b"{not json")
    assert (bad_json.status, json.loads(bad_json.body)["code"]) == (400, "invalid_json")


# ---------------------------------------------------------------- status endpoint and input


async def test_quzhou_answers_status_for_its_own_licenses_only(cities: Cities) -> None:
    identifier, _ = cities.issue()
    cities.set_status(identifier, "suspended")
    await cities.network.start(QUZHOU)

    async def status_of(identifier: str) -> PartnerResponse:
        from urllib.parse import quote

        path = f"/v1/licenses/status?identifier={quote(identifier, safe='')}"
        return await cities.to_quzhou.call("GET", path)

    ok = await status_of(identifier)
    body = json.loads(ok.body)
    assert ok.status == 200
    assert (body["identifier"], body["status"], body["reason"]) == (identifier, "suspended", "测试")
    assert body["since"].endswith("Z")
    never = make_license_identifier(DISABILITY_CERTIFICATE[0], cities.quzhou.issuer_uscc, "2099996")
    missing = await status_of(never)
    assert (missing.status, json.loads(missing.body)["code"]) == (404, "not_found")
    malformed = await status_of(identifier[:-1] + ("0" if identifier[-1] != "0" else "1"))
    problem = json.loads(malformed.body)
    assert (malformed.status, problem["code"]) == (400, "validation_failed")
    assert "check character" in problem["fields"]["identifier"]
    empty = await cities.to_quzhou.call("GET", "/v1/licenses/status")
    assert (empty.status, json.loads(empty.body)["code"]) == (400, "validation_failed")


async def test_bad_verify_requests_get_exact_codes(cities: Cities, tree: Tree) -> None:
    edit = tree.config_path(JIAN)
    text = edit.read_text(encoding="utf-8")
    first_items = 'items = ["*"]'
    assert first_items in text
    edit.write_text(text.replace(first_items, f'items = ["{RENEWAL}"]', 1), encoding="utf-8")
    await cities.network.start(JIAN)
    cases: list[tuple[bytes, int, str, str | None]] = [
        (b"{nope", 400, "invalid_json", None),
        (b"[1]", 400, "invalid_json", None),
        (b'{"license": 1}', 400, "validation_failed", "license"),
        (b"{}", 400, "validation_failed", "license"),
        (b'{"license": "x.y"}', 400, "validation_failed", "license"),
        (b'{"qr": "not a qr"}', 400, "validation_failed", "qr"),
        (b'{"license": "a.b.c", "purpose": "TB-000000-0000"}', 400, "validation_failed", "purpose"),
        (
            json.dumps({"license": "a.b.c", "holder_id": HOLDER_ID[:-1] + "0"}).encode(),
            400,
            "validation_failed",
            "holder_id",
        ),
        (b'{"license": "a.b.c", "purpose": "TB-330800-0501"}', 403, "forbidden", None),
    ]
    for raw, status, code, field in cases:
        resp = await cities.to_jian.call("POST", "/v1/licenses/verify", body=raw)
        problem = json.loads(resp.body)
        assert (resp.status, problem["code"]) == (status, code), raw
        if field:
            assert field in problem["fields"], problem
        assert HOLDER_ID[6:14] not in resp.body.decode()


async def test_every_verification_is_audited_without_personal_data(cities: Cities) -> None:
    identifier, jws = cities.issue()
    await cities.network.start(QUZHOU)
    await cities.network.start(JIAN)
    resp = await cities.to_jian.call(
        "POST", "/v1/licenses/verify", json_body={"license": jws, "holder_id": HOLDER_ID}
    )
    seq = int(resp.headers["Tongban-Audit"].split(";")[0].removeprefix("seq="))
    log = cities.network.runners[JIAN].app[AUDIT]
    raw = await log.entry(seq)  # type: ignore[attr-defined]
    entry = parse_entry(raw)
    assert entry.event == "license.verify"
    assert entry.subject == log.pseudonym(identifier)
    assert entry.meta["verdict"] == "valid" and entry.meta["reasons"] == []
    assert entry.commit is not None  # the fields shown are kept apart, erasable
    text = raw.decode()
    for personal in (HOLDER_ID, identifier, "张秀英"):
        assert personal not in text


async def test_the_openapi_document_describes_the_license_routes(cities: Cities) -> None:
    await cities.network.start(JIAN)
    resp = await cities.to_jian.call("GET", "/openapi.json")
    paths = json.loads(resp.body)["paths"]
    for method, path in (
        ("post", "/v1/licenses/verify"),
        ("post", "/v1/licenses/fetch"),
        ("get", "/v1/licenses/status"),
    ):
        operation = paths[path][method]
        assert operation["security"] == [{"requestToken": []}]
        assert "200" in operation["responses"] and "default" in operation["responses"]
    app = cities.network.runners[JIAN].app
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith("/v1/licenses")
        and r.method != "HEAD"  # aiohttp adds HEAD beside every GET
    }
    assert served == {
        ("post", "/v1/licenses/verify"),
        ("post", "/v1/licenses/fetch"),
        ("get", "/v1/licenses/status"),
    }
