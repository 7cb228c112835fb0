"""Every token attack of SPEC 2 against a running node, each with its exact code."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.encoding import b64u_encode, sha256_b64u
from gateway.http.context import AUDIT
from gateway.keys import load_token_key
from gateway.tokens.mint import SigningKey, sign_jws
from tests.support.network import Network, Tree

JIAN, QUZHOU, TONGLIAO = "cn-360800", "cn-330800", "cn-150500"
PATH = "/v1/catalog"


def _now() -> int:
    return int(time.time())


def seg(value: Any) -> str:
    return b64u_encode(json.dumps(value, separators=(",", ":")).encode())


def claims_for(
    method: str = "GET", path: str = PATH, body: bytes = b"", **over: Any
) -> dict[str, Any]:
    now = int(time.time())
    c: dict[str, Any] = {
        "iss": QUZHOU,
        "aud": JIAN,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(18),
        "htm": method,
        "htu": path,
        "bdh": sha256_b64u(body),
    }
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def sign(key: SigningKey, claims: dict[str, Any], **header_over: Any) -> str:
    header: dict[str, Any] = {"alg": key.alg, "typ": "tongban-req+jwt", "kid": key.kid}
    header.update(header_over)
    header = {k: v for k, v in header.items() if v is not None}
    signing_input = f"{seg(header)}.{seg(claims)}"
    return f"{signing_input}.{b64u_encode(sign_jws(key, signing_input.encode()))}"


def hs256_with_public_key(key: SigningKey, claims: dict[str, Any]) -> str:
    pub = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "tongban-req+jwt", "kid": key.kid}
    signing_input = f"{seg(header)}.{seg(claims)}"
    mac = hmac.new(pub, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64u_encode(mac)}"


def alg_none(key: SigningKey, claims: dict[str, Any]) -> str:
    return f"{seg({'alg': 'none', 'typ': 'tongban-req+jwt', 'kid': key.kid})}.{seg(claims)}."


async def send(
    url: str, token: str | None, *, method: str = "GET", path: str = PATH, body: bytes = b""
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method, url + path, data=io.BytesIO(body) if body else None, headers=headers
        ) as resp,
    ):
        return resp.status, await resp.json(content_type=None), resp.headers


def _drop_claim(name: str) -> Attack:
    return lambda q, t: (sign(q, claims_for(**{name: None})), {})


Attack = Callable[[SigningKey, SigningKey], tuple[str | None, dict[str, Any]]]


def _attacks() -> dict[str, tuple[Attack, str, int]]:
    other = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    return {
        "no token": (lambda q, t: (None, {}), "token_missing", 401),
        "garbage": (lambda q, t: ("not-a-jws", {}), "token_malformed", 401),
        "garbage base64": (lambda q, t: ("a$b.c$d.e$f", {}), "token_malformed", 401),
        "oversized": (lambda q, t: ("a" * 9000 + ".b.c", {}), "token_malformed", 401),
        "wrong typ": (lambda q, t: (sign(q, claims_for(), typ="JWT"), {}), "token_malformed", 401),
        "alg none": (lambda q, t: (alg_none(q, claims_for()), {}), "token_algorithm", 401),
        "HS256 with the public key": (
            lambda q, t: (hs256_with_public_key(q, claims_for()), {}),
            "token_algorithm",
            401,
        ),
        "EdDSA claimed for an ES256 key": (
            lambda q, t: (sign(q, claims_for(), alg="EdDSA"), {}),
            "token_algorithm",
            401,
        ),
        "kid not registered": (
            lambda q, t: (sign(other, claims_for()), {}),
            "partner_unknown",
            401,
        ),
        "kid of another partner, signed by a different key": (
            lambda q, t: (
                sign(SigningKey(kid=q.kid, alg="ES256", private_key=t.private_key), claims_for()),
                {},
            ),
            "token_signature",
            401,
        ),
        "iss not owning the kid": (
            lambda q, t: (sign(q, claims_for(iss=TONGLIAO)), {}),
            "partner_unknown",
            401,
        ),
        "expired": (
            lambda q, t: (sign(q, claims_for(iat=_now() - 400, exp=_now() - 100)), {}),
            "token_expired",
            401,
        ),
        "iat in the future": (
            lambda q, t: (sign(q, claims_for(iat=_now() + 120, exp=_now() + 180)), {}),
            "token_not_yet_valid",
            401,
        ),
        "lifetime over 300 s": (
            lambda q, t: (sign(q, claims_for(iat=_now(), exp=_now() + 301)), {}),
            "token_lifetime",
            401,
        ),
        "wrong aud": (lambda q, t: (sign(q, claims_for(aud=TONGLIAO)), {}), "token_audience", 401),
        "body changed": (
            lambda q, t: (sign(q, claims_for(body=b'{"a":1}')), {"body": b'{"a":2}'}),
            "token_binding",
            401,
        ),
        "method changed": (
            lambda q, t: (sign(q, claims_for(method="POST")), {}),
            "token_binding",
            401,
        ),
        "path changed": (
            lambda q, t: (sign(q, claims_for(path="/v1/catalog?x=1")), {}),
            "token_binding",
            401,
        ),
        "query changed": (
            lambda q, t: (sign(q, claims_for(path=PATH + "?a=1")), {"path": PATH + "?a=2"}),
            "token_binding",
            401,
        ),
        "jti too short": (lambda q, t: (sign(q, claims_for(jti="short")), {}), "token_claims", 401),
        "iat not an integer": (
            lambda q, t: (sign(q, claims_for(iat=str(_now()))), {}),
            "token_claims",
            401,
        ),
    } | {
        f"claim {name} missing": (
            _drop_claim(name),
            "token_claims",
            401,
        )
        for name in ("iss", "aud", "iat", "exp", "jti", "htm", "htu", "bdh")
    }


ATTACKS = _attacks()


@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_token_attack_is_refused_with_its_code(
    name: str, tree: Tree, network: Network
) -> None:
    await network.start(JIAN)
    quzhou = load_token_key(tree.config(QUZHOU))
    tongliao = load_token_key(tree.config(TONGLIAO))
    make, code, status = ATTACKS[name]
    token, over = make(quzhou, tongliao)
    got_status, body, headers = await send(tree.url(JIAN), token, **over)
    assert (got_status, body["code"]) == (status, code), body
    assert body["type"] == f"urn:tongban:error:{code}"
    assert headers["Content-Type"].startswith("application/problem+json")
    assert headers["X-Request-Id"] == body["request_id"]


async def test_valid_token_gets_the_catalog(tree: Tree, network: Network) -> None:
    await network.start(JIAN)
    quzhou = load_token_key(tree.config(QUZHOU))
    status, body, headers = await send(tree.url(JIAN), sign(quzhou, claims_for()))
    assert status == 200, body
    assert body["node"] == JIAN
    assert {i["handling_node"] for i in body["items"]} == {JIAN}
    assert headers["Tongban-Audit"].startswith("seq=")


async def test_replayed_jti_is_refused(tree: Tree, network: Network) -> None:
    await network.start(JIAN)
    quzhou = load_token_key(tree.config(QUZHOU))
    token = sign(quzhou, claims_for())
    first, _, _ = await send(tree.url(JIAN), token)
    second, body, _ = await send(tree.url(JIAN), token)
    assert (first, second, body["code"]) == (200, 401, "token_replayed")


def _edit(tree: Tree, node_id: str, old: str, new: str) -> None:
    path = tree.config_path(node_id)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def test_partner_outside_its_agreement_dates(tree: Tree, network: Network) -> None:
    _edit(tree, JIAN, "agreement_until = 2030-12-31", "agreement_until = 2024-06-30")
    await network.start(JIAN)
    quzhou = load_token_key(tree.config(QUZHOU))
    status, body, _ = await send(tree.url(JIAN), sign(quzhou, claims_for()))
    assert (status, body["code"]) == (403, "partner_suspended")


async def test_endpoint_outside_the_acl(tree: Tree, network: Network) -> None:
    _edit(tree, JIAN, 'endpoints = ["*"]', 'endpoints = ["licenses.verify"]')
    await network.start(JIAN)
    quzhou = load_token_key(tree.config(QUZHOU))
    status, body, _ = await send(tree.url(JIAN), sign(quzhou, claims_for()))
    assert (status, body["code"]) == (403, "forbidden")


async def test_over_its_rate(tree: Tree, network: Network) -> None:
    _edit(tree, JIAN, "rate = 200\nburst = 400", "rate = 0.5\nburst = 2")
    await network.start(JIAN)
    quzhou = load_token_key(tree.config(QUZHOU))
    results = [await send(tree.url(JIAN), sign(quzhou, claims_for())) for _ in range(3)]
    assert [r[0] for r in results] == [200, 200, 429]
    assert results[2][1]["code"] == "rate_limited"
    assert int(results[2][2]["Retry-After"]) >= 1


async def test_oversized_body_is_refused_before_auth(tree: Tree, network: Network) -> None:
    await network.start(JIAN)
    status, body, _ = await send(tree.url(JIAN), "x", method="POST", body=b"{" + b" " * (2 << 20))
    assert (status, body["code"]) == (413, "body_too_large")


async def test_rejections_are_audited_without_the_token(tree: Tree, network: Network) -> None:
    await network.start(JIAN)
    status, _body, headers = await send(tree.url(JIAN), "garbage")
    assert status == 401
    seq = int(headers["Tongban-Audit"].split(";")[0].removeprefix("seq="))
    entry = json.loads(await network.runners[JIAN].app[AUDIT].entry(seq))
    assert (entry["outcome"], entry["code"], entry["actor"]["id"]) == (
        "rejected",
        "token_malformed",
        "unauthenticated",
    )
    assert "garbage" not in json.dumps(entry)


def test_attack_table_covers_every_token_code() -> None:
    codes = {code for _, code, _ in ATTACKS.values()}
    assert codes >= {
        "token_missing",
        "token_malformed",
        "partner_unknown",
        "token_algorithm",
        "token_signature",
        "token_claims",
        "token_expired",
        "token_not_yet_valid",
        "token_lifetime",
        "token_audience",
        "token_binding",
    }
