# mypy: disable-error-code="assignment,dict-item,var-annotated"
"""Writes ``hostile.jsonl``: the hostile-request corpus run by tests/hostile/test_corpus.py.

The corpus is data (one JSON object a line) so it can be read, reviewed and extended
without reading code; this script only saves typing. Run it after editing:

    .venv/bin/python tests/corpus/make_corpus.py

Each line: ``name``, ``method``, ``path``, ``headers``, ``body`` (text) or ``body_b64``
or ``body_fill`` ({"text", "count"}: a large body), ``token`` (how to sign, see below,
or null for none), ``repeat`` (send the identical request this many times; the last
answer counts), ``expect_status``, ``expect_code``, ``known_bug`` (optional: why the
node does not yet answer as the SPEC says; the runner marks the case xfail).

Request tokens cannot be stored (they expire, and each test session has its own PKI),
so ``token`` is a recipe the runner follows when it sends: ``signer`` is ``quzhou``
(the registered partner key), ``stranger`` (an unregistered key), ``wrong_key`` (the
Quzhou kid with another key), ``alg_none``, ``hs256_pubkey`` (HMAC keyed with Quzhou's
public key) or ``literal`` (``value`` is the token text); ``header`` and ``claims``
override the defaults (null deletes a member; ``"$now+N"`` is a time relative to now;
``"$jti"`` a fresh jti); ``bind_method``/``bind_path``/``bind_body`` sign a different
request than the one sent; ``tamper`` changes the signed token (``flip_signature``,
``truncate_signature``, ``empty_signature``, ``der_signature``, ``pad``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("hostile.jsonl")

JIAN = "cn-360800"
VERIFY = "/v1/licenses/verify"
FETCH = "/v1/licenses/fetch"
STATUS = "/v1/licenses/status"
CATALOG = "/v1/catalog"
SUBMIT = "/v1/service-requests"
UUID = "4f1c2a8e-6b0d-4e2a-9c1f-2d3e4f5a6b7c"
HOLDER_ID = "11010519491231002X"  # GB 11643 example: valid check digit
HOLDER_NAME = "张秀英"
BAD_ID = "110105194912310021"  # wrong check digit
GOOD_IDENTIFIER = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"

DUPLICATE_TYP = '{"alg":"ES256","typ":"tongban-req+jwt","kid":"$kid","typ":"JWT"}'
LIC = "$LICENSE"
"""Replaced by the runner with a license Ji'an issued (signed with the session's PKI)."""

cases: list[dict[str, Any]] = []


def case(name: str, method: str, path: str, status: int, code: str, **kw: Any) -> None:
    entry: dict[str, Any] = {
        "name": name,
        "method": method,
        "path": path,
        "headers": kw.pop("headers", {}),
        "token": kw.pop("token", {"signer": "quzhou"}),
        "expect_status": status,
        "expect_code": code,
    }
    if "body_b64" in kw:
        entry["body_b64"] = kw.pop("body_b64")
    elif "body_fill" in kw:
        entry["body_fill"] = kw.pop("body_fill")
    else:
        body = kw.pop("body", None)
        entry["body"] = (
            body if isinstance(body, str) or body is None else json.dumps(body, ensure_ascii=False)
        )
    entry.update(kw)
    cases.append(entry)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


PARTNER_ROUTES = [
    ("GET", CATALOG, None),
    ("POST", VERIFY, {"license": "$LICENSE"}),
    ("POST", FETCH, {"qr": "TB1:x.y.z"}),
    ("GET", STATUS + "?identifier=" + GOOD_IDENTIFIER, None),
    ("POST", SUBMIT, {"request_id": UUID}),
    ("GET", f"{SUBMIT}/{UUID}", None),
    ("POST", f"{SUBMIT}/{UUID}/events", {"status": "accepted"}),
]

# ---------------------------------------------------------------- A. no token, bad schemes
for method, path, body in PARTNER_ROUTES:
    case(f"no token: {method} {path.split('?')[0]}", method, path, 401, "token_missing",
         body=body, token=None)  # fmt: skip
for label, value in [
    ("Basic scheme", "Basic cXV6aG91OnNlY3JldA=="),
    ("empty bearer", "Bearer "),
    ("bearer only spaces", "Bearer      "),
    ("Token scheme", "Token abc.def.ghi"),
    ("no scheme", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"),
    ("Digest scheme", 'Digest username="quzhou"'),
]:
    case(f"scheme: {label}", "GET", CATALOG, 401, "token_missing",
         headers={"Authorization": value}, token=None)  # fmt: skip

# ---------------------------------------------------------------- A. malformed tokens
for label, value in [
    ("one segment", "abc"),
    ("two segments", "abc.def"),
    ("four segments", "a.b.c.d"),
    ("dollar signs", "a$b.c$d.e$f"),
    ("padding", "eyJhIjoxfQ==.eyJhIjoxfQ==.c2ln"),
    ("standard base64 alphabet", "ab+/.cd+/.ef+/"),
    ("spaces inside", "abc. def.ghi"),
    ("non-ASCII", "ａｂｃ.ｄｅｆ.ｇｈｉ"),
    ("oversized 9000 characters", "a" * 9000 + ".b.c"),
    ("header not JSON", b64(b"not json").rstrip("=").replace("+", "-") + ".e30.c2ln"),
    ("header JSON array", base64.urlsafe_b64encode(b"[1,2]").decode().rstrip("=") + ".e30.c2ln"),
    ("header JSON string", base64.urlsafe_b64encode(b'"ES256"').decode().rstrip("=") + ".e30.c2ln"),
    ("empty segments", ".."),
]:
    case(f"malformed: {label}", "GET", CATALOG, 401, "token_malformed",
         headers={"Authorization": f"Bearer {value}"}, token=None)  # fmt: skip
for label, header in [
    ("typ JWT", {"typ": "JWT"}),
    ("typ missing", {"typ": None}),
    ("typ of a QR token", {"typ": "tongban-qr+jwt"}),
    ("typ of a license", {"typ": "tongban-license+jwt"}),
    ("crit extension", {"crit": ["b64"], "b64": False}),
    ("duplicate header member", {"__raw_header__": DUPLICATE_TYP}),
]:  # fmt: skip
    case(f"malformed: {label}", "GET", CATALOG, 401, "token_malformed",
         token={"signer": "quzhou", "header": header})  # fmt: skip
for label, tamper in [("padded signature", "pad")]:
    case(f"malformed: {label}", "GET", CATALOG, 401, "token_malformed",
         token={"signer": "quzhou", "tamper": tamper})  # fmt: skip

# ---------------------------------------------------------------- A. algorithms and keys
for method, path, body in PARTNER_ROUTES[:3]:
    case(f"alg none: {method} {path}", method, path, 401, "token_algorithm",
         body=body, token={"signer": "alg_none"})  # fmt: skip
for label, header in [
    ("HS256 claimed", {"alg": "HS256"}),
    ("EdDSA claimed for an ES256 key", {"alg": "EdDSA"}),
    ("RS256 claimed", {"alg": "RS256"}),
    ("ES384 claimed", {"alg": "ES384"}),
    ("lower-case es256", {"alg": "es256"}),
    ("alg missing", {"alg": None}),
    ("alg a number", {"alg": 256}),
]:
    case(f"algorithm: {label}", "GET", CATALOG, 401, "token_algorithm",
         token={"signer": "quzhou", "header": header})  # fmt: skip
case("algorithm: HS256 keyed with the public key", "GET", CATALOG, 401, "token_algorithm",
     token={"signer": "hs256_pubkey"})  # fmt: skip
for label, token in [
    ("unregistered key", {"signer": "stranger"}),
    ("kid missing", {"signer": "quzhou", "header": {"kid": None}}),
    ("kid a number", {"signer": "quzhou", "header": {"kid": 7}}),
    ("kid empty", {"signer": "quzhou", "header": {"kid": ""}}),
    ("kid path traversal", {"signer": "quzhou", "header": {"kid": "../../certs/cn-330800/token"}}),
    ("kid SQL", {"signer": "quzhou", "header": {"kid": "' OR 1=1 --"}}),
    ("iss is not the kid's owner", {"signer": "quzhou", "claims": {"iss": "cn-150500"}}),
    ("iss is this node", {"signer": "quzhou", "claims": {"iss": JIAN}}),
]:
    case(f"partner: {label}", "GET", CATALOG, 401, "partner_unknown", token=token)
for method, path, body in PARTNER_ROUTES[1:3]:
    case(f"unregistered key: {method} {path}", method, path, 401, "partner_unknown",
         body=body, token={"signer": "stranger"})  # fmt: skip

# ---------------------------------------------------------------- A. signatures
for label, token in [
    ("Quzhou kid, another key", {"signer": "wrong_key"}),
    ("flipped signature bit", {"signer": "quzhou", "tamper": "flip_signature"}),
    ("truncated signature", {"signer": "quzhou", "tamper": "truncate_signature"}),
    ("empty signature", {"signer": "quzhou", "tamper": "empty_signature"}),
    ("DER signature instead of r||s", {"signer": "quzhou", "tamper": "der_signature"}),
    ("claims swapped after signing", {"signer": "quzhou", "tamper": "swap_claims"}),
]:
    case(f"signature: {label}", "GET", CATALOG, 401, "token_signature", token=token)
case("signature: another key on verify", "POST", VERIFY, 401, "token_signature",
     body={"license": "$LICENSE"}, token={"signer": "wrong_key"})  # fmt: skip

# ---------------------------------------------------------------- A. claims
for claim in ("iss", "aud", "iat", "exp", "jti", "htm", "htu", "bdh"):
    case(f"claims: {claim} missing", "GET", CATALOG, 401, "token_claims",
         token={"signer": "quzhou", "claims": {claim: None}})  # fmt: skip
for label, claims in [
    ("iat a string", {"iat": "$now-as-string"}),
    ("iat a float", {"iat": 1.5}),
    ("iat a boolean", {"iat": True}),
    ("exp a string", {"exp": "tomorrow"}),
    ("exp null", {"exp": None, "__keep_null__": ["exp"]}),
    ("iss a number", {"iss": 330800}),
    ("aud a list", {"aud": [JIAN]}),
    ("jti too short", {"jti": "short"}),
    ("jti too long", {"jti": "x" * 65}),
    ("jti with a slash", {"jti": "abcdefgh/ijklmnopq"}),
    ("jti a number", {"jti": 12345678901234567890}),
    ("htm a number", {"htm": 1}),
    ("bdh not a digest", {"bdh": "abc"}),
    ("bdh hex digest", {"bdh": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}),
    ("sub a number", {"sub": 7}),
    ("pur over 200 characters", {"pur": "用" * 201}),
    ("pur an object", {"pur": {"a": 1}}),
]:
    case(f"claims: {label}", "GET", CATALOG, 401, "token_claims",
         token={"signer": "quzhou", "claims": claims})  # fmt: skip

# ---------------------------------------------------------------- A. time, audience, binding
for label, claims, code in [
    ("expired 100 s ago", {"iat": "$now-400", "exp": "$now-100"}, "token_expired"),
    ("expired a year ago", {"iat": "$now-31536000", "exp": "$now-31535900"}, "token_expired"),
    ("iat two minutes ahead", {"iat": "$now+120", "exp": "$now+180"}, "token_not_yet_valid"),
    ("iat a day ahead", {"iat": "$now+86400", "exp": "$now+86460"}, "token_not_yet_valid"),
    ("lifetime 301 s", {"iat": "$now", "exp": "$now+301"}, "token_lifetime"),
    ("lifetime ten years", {"iat": "$now", "exp": "$now+315360000"}, "token_lifetime"),
    ("exp before iat", {"iat": "$now", "exp": "$now-10"}, "token_lifetime"),
    ("aud another node", {"aud": "cn-150500"}, "token_audience"),
    ("aud the caller", {"aud": "cn-330800"}, "token_audience"),
    ("aud upper case", {"aud": "CN-360800"}, "token_audience"),
]:
    case(
        f"claims: {label}", "GET", CATALOG, 401, code, token={"signer": "quzhou", "claims": claims}
    )
for label, token, path, body in [
    ("method changed", {"signer": "quzhou", "bind_method": "POST"}, CATALOG, None),
    ("path changed", {"signer": "quzhou", "bind_path": STATUS}, CATALOG, None),
    ("query added", {"signer": "quzhou", "bind_path": CATALOG}, CATALOG + "?a=1", None),
    ("query changed", {"signer": "quzhou", "bind_path": CATALOG + "?a=1"}, CATALOG + "?a=2", None),
    ("query reordered", {"signer": "quzhou", "bind_path": CATALOG + "?a=1&b=2"},
     CATALOG + "?b=2&a=1", None),
    ("path case", {"signer": "quzhou", "bind_path": "/V1/CATALOG"}, CATALOG, None),
    ("trailing slash", {"signer": "quzhou", "bind_path": CATALOG + "/"}, CATALOG, None),
    ("encoded path", {"signer": "quzhou", "bind_path": "/v1/%63atalog"}, CATALOG, None),
]:  # fmt: skip
    case(f"binding: {label}", "GET", path, 401, "token_binding", token=token, body=body)
for label, token, body in [
    ("body changed", {"signer": "quzhou", "bind_body": '{"license":"a"}'}, {"license": "b"}),
    ("body signed empty", {"signer": "quzhou", "bind_body": ""}, {"license": "x"}),
    ("body whitespace added", {"signer": "quzhou", "bind_body": '{"license":"x"}'},
     '{"license": "x"}'),
    ("method GET signed for POST", {"signer": "quzhou", "bind_method": "GET"}, {"license": "x"}),
    ("path of fetch signed for verify", {"signer": "quzhou", "bind_path": FETCH},
     {"license": "x"}),
    ("PII body changed", {"signer": "quzhou", "bind_body": "{}"},
     {"license": "x", "holder": {"id": HOLDER_ID, "name": HOLDER_NAME}}),
]:  # fmt: skip
    case(f"binding: {label}", "POST", VERIFY, 401, "token_binding", token=token, body=body)

# ---------------------------------------------------------------- A. replays
for method, path, body, _first in [
    ("GET", CATALOG, None, 200),
    ("POST", VERIFY, {"license": "$LICENSE"}, 200),
    ("GET", STATUS + "?identifier=" + GOOD_IDENTIFIER, None, 404),
]:
    case(f"replay: {method} {path.split('?')[0]}", method, path, 401, "token_replayed",
         body=body, repeat=2)  # fmt: skip

# ---------------------------------------------------------------- B. verify bodies
for label, body in [
    ("empty body", ""),
    ("open brace", "{"),
    ("array", "[]"),
    ("null", "null"),
    ("number", "1"),
    ("string", '"license"'),
    ("single quotes", "{'license': 'x'}"),
    ("NaN", '{"license": NaN}'),
    ("Infinity", '{"n": Infinity}'),
    ("duplicate member", '{"license":"a","license":"b"}'),
    ("trailing garbage", '{"license":"a"} x'),
    ("trailing comma", '{"license":"a",}'),
    ("comment", '{"license":"a"/* c */}'),
    ("BOM", "\ufeff{}"),
]:
    case(f"verify json: {label}", "POST", VERIFY, 400, "invalid_json", body=body)
for label, raw in [
    ("UTF-16", '{"license":"x"}'.encode("utf-16")),
    ("latin-1 bytes", b'{"license":"\xe9"}'),
    ("lone surrogate escape bytes", b'{"license":"\xed\xa0\x80"}'),
    ("GB18030 bytes", '{"holder_id":"张"}'.encode("gb18030")),
]:
    case(f"verify json: {label}", "POST", VERIFY, 400, "invalid_json", body_b64=b64(raw))
for label, text in [
    ("deep array nesting", "[" * 100_000),
    ("deep object nesting", '{"a":' * 100_000),
]:
    case(f"verify json: {label}", "POST", VERIFY, 400, "invalid_json", body=text)
for label, body in [
    ("empty object", {}),
    ("license and qr", {"license": "a.b.c", "qr": "TB1:a.b.c"}),
    ("license a number", {"license": 7}),
    ("license an object", {"license": {"a": 1}}),
    ("license null", {"license": None}),
    ("license not a JWS", {"license": "not-a-jws"}),
    ("license two segments", {"license": "a.b"}),
    ("license with spaces", {"license": "a b.c d.e f"}),
    ("license over 64 KiB", {"license": "a." + "b" * 70_000 + ".c"}),
    ("qr without TB1 prefix", {"qr": "a.b.c"}),
    ("qr garbage", {"qr": "TB1:garbage"}),
    ("qr over 1024 characters", {"qr": "TB1:" + "a" * 1100}),
    ("qr a list", {"qr": ["TB1:a.b.c"]}),
    ("misspelt member", {"license": "a.b.c", "purpse": "x"}),
    ("holder not an object", {"license": "$LICENSE", "holder": "x"}),
    ("holder with a bad check digit", {"license": "$LICENSE", "holder": {"id": BAD_ID}}),
    ("holder id of letters", {"license": "$LICENSE", "holder": {"id": "ABCDEFGHIJKLMNOPQR"}}),
    ("holder id_type unknown", {"license": LIC, "holder": {"id": HOLDER_ID, "id_type": "999"}}),
    ("holder with a name", {"license": LIC, "holder": {"id": HOLDER_ID, "name": HOLDER_NAME}}),
    ("holder and holder_id", {"license": LIC, "holder": {"id": HOLDER_ID}, "holder_id": HOLDER_ID}),
    ("holder_id a number", {"license": "$LICENSE", "holder_id": 110105194912310021}),
    ("holder_id impossible birth date", {"license": "$LICENSE", "holder_id": "110105194902310028"}),
    ("purpose empty", {"license": "$LICENSE", "purpose": ""}),
    ("purpose too long", {"license": "$LICENSE", "purpose": "P" * 65}),
    ("purpose a number", {"license": "$LICENSE", "purpose": 302}),
    ("purpose unknown item", {"license": "$LICENSE", "purpose": "TB-000000-0000"}),
    ("purpose SQL", {"license": "$LICENSE", "purpose": "x' OR '1'='1"}),
]:  # fmt: skip
    case(f"verify fields: {label}", "POST", VERIFY, 400, "validation_failed", body=body)
case("verify: purpose not allowed for this partner", "POST", VERIFY, 403, "forbidden",
     body={"license": "$LICENSE", "purpose": "TB-360800-0101"})  # fmt: skip
case("verify: body over 1 MiB", "POST", VERIFY, 413, "body_too_large",
     body_fill={"text": " ", "count": 1_100_000})  # fmt: skip
case("verify: body over 1 MiB without a token", "POST", VERIFY, 413, "body_too_large",
     body_fill={"text": "{", "count": 2_100_000}, token=None)  # fmt: skip
case("verify: Content-Length lies (too large)", "POST", VERIFY, 413, "body_too_large",
     headers={"Content-Length": "99999999"}, body="{}", token=None)  # fmt: skip

# ---------------------------------------------------------------- C. fetch
for label, body, status, code in [
    ("empty object", {}, 400, "validation_failed"),
    ("qr a number", {"qr": 1}, 400, "validation_failed"),
    ("qr garbage", {"qr": "garbage"}, 400, "validation_failed"),
    ("misspelt member", {"qr": "TB1:a.b.c", "purpse": "x"}, 400, "validation_failed"),
    ("purpose a number", {"qr": "TB1:a.b.c", "purpose": 1}, 400, "validation_failed"),
    ("invalid json", "{", 400, "invalid_json"),
    ("json array", "[1]", 400, "invalid_json"),
]:
    case(f"fetch: {label}", "POST", FETCH, status, code, body=body)

# ---------------------------------------------------------------- D. status
for label, query, status, code in [
    ("no identifier", "", 400, "validation_failed"),
    ("empty identifier", "?identifier=", 400, "validation_failed"),
    ("wrong check character", "?identifier=" + GOOD_IDENTIFIER[:-1] + "A", 400,
     "validation_failed"),
    ("wrong prefix", "?identifier=1.2.156.9999.2.1.2.3.001.F", 400, "validation_failed"),
    ("bad issuer code", "?identifier=1.2.156.3005.2.11100000000013338W032.11220000013544541X"
     ".2430599.001.F", 400, "validation_failed"),
    ("SQL in identifier", "?identifier=%27%20OR%201%3D1%20--", 400, "validation_failed"),
    ("very long identifier", "?identifier=" + "1" * 3000, 400, "validation_failed"),
    ("resident id as identifier", "?identifier=" + HOLDER_ID, 400, "validation_failed"),
    ("never issued here", "?identifier=" + GOOD_IDENTIFIER, 404, "not_found"),
]:  # fmt: skip
    case(f"status: {label}", "GET", STATUS + query, status, code)

# ---------------------------------------------------------------- E. service requests
SUBMISSION = {
    "request_id": UUID,
    "item_code": "TB-360800-0302",
    "applicant": {"name": HOLDER_NAME, "id_type": "111", "id": HOLDER_ID},
    "licenses": [],
    "form": {},
    "submitted_at": "2026-11-20T10:00:00+08:00",
}
for label, change in [
    ("empty object", None),
    ("request_id not a UUID", {"request_id": "42"}),
    ("request_id upper-case braces", {"request_id": "{" + UUID.upper() + "}"}),
    ("unknown item", {"item_code": "TB-000000-0000"}),
    ("item handled elsewhere", {"item_code": "TB-330800-0501"}),
    ("applicant id bad check digit", {"applicant": {**SUBMISSION["applicant"], "id": BAD_ID}}),
    ("applicant not an object", {"applicant": HOLDER_NAME}),
    ("licenses not a list", {"licenses": "x"}),
    ("licenses of garbage", {"licenses": ["not-an-identifier"]}),
    ("form not an object", {"form": []}),
    ("submitted_at not a time", {"submitted_at": "yesterday"}),
    ("unknown member", {"extra": 1}),
]:  # fmt: skip
    body = {} if change is None else {**SUBMISSION, **change}
    case(f"submit: {label}", "POST", SUBMIT, 400, "validation_failed", body=body)
for label, text in [("not json", "request"), ("array", "[]"), ("deep nesting", "[" * 50_000)]:
    case(f"submit json: {label}", "POST", SUBMIT, 400, "invalid_json", body=text)
for label, rid, status, code in [
    ("read: id not a UUID", "not-a-uuid", None, None),
    ("read: unknown request", UUID, 404, "not_found"),
]:
    if status is None:
        continue
    case(label, "GET", f"{SUBMIT}/{rid}", status, code)
for label, rid, body, status, code in [
    ("events: id not a UUID", "42", {"status": "accepted"}, 400, "validation_failed"),
    ("events: status unknown", UUID, {"status": "teleported", "at": "2026-11-20T10:00:00Z"}, 400,
     "validation_failed"),
    ("events: not json", UUID, "{", 400, "invalid_json"),
    ("events: empty object", UUID, {}, 400, "validation_failed"),
]:  # fmt: skip
    case(label, "POST", f"{SUBMIT}/{rid}/events", status, code, body=body)

# ---------------------------------------------------------------- F. routing
for label, method, path in [
    ("unknown v1 path", "GET", "/v1/nothing"),
    ("unknown v2 path", "GET", "/v2/catalog"),
    ("admin path", "GET", "/v1/admin"),
    ("path traversal", "GET", "/v1/../../etc/passwd"),
    ("encoded traversal", "GET", "/v1/%2e%2e/%2e%2e/etc/passwd"),
    ("null byte", "GET", "/v1/catalog%00"),
    ("very long path", "GET", "/v1/" + "a" * 4000),
    ("dot files", "GET", "/v1/.env"),
    ("verify with a suffix", "POST", VERIFY + "/x"),
    ("double slash", "GET", "//v1//catalog"),
]:
    case(f"route: {label}", method, path, 404, "not_found", token=None)
for label, method, path in [
    ("DELETE catalog", "DELETE", CATALOG),
    ("PUT verify", "PUT", VERIFY),
    ("GET verify", "GET", VERIFY),
    ("PATCH submit", "PATCH", SUBMIT),
    ("GET fetch", "GET", FETCH),
    ("POST status", "POST", STATUS),
    ("DELETE a request", "DELETE", f"{SUBMIT}/{UUID}"),
]:
    case(f"method: {label}", method, path, 405, "method_not_allowed", token=None)


def main() -> None:
    names = [c["name"] for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SystemExit(f"duplicate names: {sorted(dupes)}")
    with OUT.open("w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
