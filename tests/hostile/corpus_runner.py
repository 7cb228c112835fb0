"""Sends the hostile-request corpus (tests/corpus/hostile.jsonl) to a live node.

Requests go over a raw loopback socket, byte for byte as written in the corpus (no
client library normalising ``..`` in paths, fixing a lying ``Content-Length`` or
adding headers), and each answer is read whole. Request tokens are made here from the
corpus's recipes (see ``tests/corpus/make_corpus.py``) with the session's keys.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.encoding import b64u_encode, sha256_b64u
from gateway.tokens.mint import SigningKey, sign_jws

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "hostile.jsonl"
JIAN, QUZHOU = "cn-360800", "cn-330800"
_READ_LIMIT = 4 << 20


def load_corpus() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass(frozen=True)
class Keys:
    quzhou: SigningKey
    stranger: SigningKey = field(
        default_factory=lambda: SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    )


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _seg(value: Any) -> str:
    raw = (
        value.encode() if isinstance(value, str) else json.dumps(value, ensure_ascii=False).encode()
    )
    return b64u_encode(raw)


def _resolve(value: Any, now: int) -> Any:
    if isinstance(value, str):
        if value == "$jti":
            return secrets.token_urlsafe(18)
        if value == "$now-as-string":
            return str(now)
        if value.startswith("$now"):
            return now + int(value[4:] or 0)
    return value


def make_token(recipe: dict[str, Any], keys: Keys, method: str, path: str, body: bytes) -> str:
    """The token a corpus recipe describes, bound to this request unless told otherwise."""
    signer = recipe["signer"]
    if signer == "literal":
        return str(recipe["value"])
    now = int(time.time())
    key = {"stranger": keys.stranger}.get(signer, keys.quzhou)
    header: dict[str, Any] = {"alg": key.alg, "typ": "tongban-req+jwt", "kid": key.kid}
    claims: dict[str, Any] = {
        "iss": QUZHOU,
        "aud": JIAN,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(18),
        "htm": recipe.get("bind_method", method),
        "htu": recipe.get("bind_path", path),
        "bdh": sha256_b64u(recipe["bind_body"].encode() if "bind_body" in recipe else body),
    }
    raw_header = None
    for target, changes in ((header, recipe.get("header", {})), (claims, recipe.get("claims", {}))):
        keep_null = set(changes.get("__keep_null__", ()))
        for name, value in changes.items():
            if name == "__raw_header__":
                raw_header = value.replace("$kid", key.kid)
            elif name == "__keep_null__":
                continue
            elif value is None and name not in keep_null:
                target.pop(name, None)
            else:
                target[name] = _resolve(value, now)
    if signer == "alg_none":
        header["alg"] = "none"
        return f"{_seg(header)}.{_seg(claims)}."
    head = _seg(raw_header) if raw_header is not None else _seg(header)
    signing_input = f"{head}.{_seg(claims)}"
    if signer == "hs256_pubkey":
        header["alg"] = "HS256"
        signing_input = f"{_seg(header)}.{_seg(claims)}"
        pem = key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64u_encode(mac)}"
    if signer == "wrong_key":
        key = SigningKey(kid=keys.quzhou.kid, alg="ES256", private_key=keys.stranger.private_key)
    signature = sign_jws(key, signing_input.encode())
    tamper = recipe.get("tamper")
    if tamper == "flip_signature":
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    elif tamper == "truncate_signature":
        signature = signature[:50]
    elif tamper == "empty_signature":
        signature = b""
    elif tamper == "der_signature":
        assert isinstance(key.private_key, ec.EllipticCurvePrivateKey)
        signature = key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    token = f"{signing_input}.{b64u_encode(signature)}"
    if tamper == "pad":
        token += "=="
    elif tamper == "swap_claims":
        other = dict(claims, jti=secrets.token_urlsafe(18))
        token = f"{head}.{_seg(other)}.{b64u_encode(signature)}"
    return token


def body_of(case: dict[str, Any], license_jws: str) -> bytes:
    if "body_b64" in case:
        return base64.b64decode(case["body_b64"])
    if "body_fill" in case:
        return bytes(case["body_fill"]["text"].encode() * int(case["body_fill"]["count"]))
    text = case.get("body")
    return b"" if text is None else text.replace("$LICENSE", license_jws).encode("utf-8")


async def send_raw(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes
) -> Answer:
    """One HTTP/1.1 request on its own connection, exactly as given; the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        given = {k.lower() for k in headers}
        if "content-length" not in given:
            lines.append(f"Content-Length: {len(body)}")
        if body and "content-type" not in given:
            lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        # The node may answer (413) and close before it read the body: that is fine.
        with contextlib.suppress(ConnectionError):
            if "content-length" not in given:
                writer.write(body)
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(_READ_LIMIT), timeout=30)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    if parsed.get("transfer-encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    return Answer(int(status_line.split()[1]), parsed, rest)


def _dechunk(data: bytes) -> bytes:
    out, at = b"", 0
    while True:
        end = data.index(b"\r\n", at)
        size = int(data[at:end].split(b";")[0], 16)
        if size == 0:
            return out
        out += data[end + 2 : end + 2 + size]
        at = end + 2 + size + 2


async def run_case(case: dict[str, Any], port: int, keys: Keys, license_jws: str) -> Answer:
    """Send one corpus case (``repeat`` times with the same token); the last answer."""
    body = body_of(case, license_jws)
    headers = dict(case.get("headers") or {})
    recipe = case.get("token")
    if recipe is not None:
        headers["Authorization"] = "Bearer " + make_token(
            recipe, keys, case["method"], case["path"], body
        )
    answer = None
    for _ in range(int(case.get("repeat", 1))):
        answer = await send_raw(port, case["method"], case["path"], headers, body)
    assert answer is not None
    return answer
