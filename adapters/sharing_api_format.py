"""Tongliao's provincial sharing platform (通辽 / 内蒙古政务服务一体化平台): the
national e-license sharing API field names, epoch-millisecond times, HMAC-signed calls.

Every call, both ways, carries::

    X-App-Id:    the caller's application id (Ji'an is ``360800``, Tongliao ``150500``)
    X-Timestamp: epoch milliseconds; refused more than five minutes off
    X-Nonce:     32 hex characters, accepted once
    X-Signature: base64(HMAC-SHA256(secret, METHOD \\n PATH \\n APP_ID \\n TIMESTAMP
                                            \\n NONCE \\n hex(SHA-256(body))))

and every answer is signed the same way over ``RESPONSE \\n METHOD \\n PATH \\n CALLER APP_ID
\\n ITS TIMESTAMP \\n THE REQUEST'S NONCE \\n hex(SHA-256(answer body))``, so a reply
cannot be replayed onto another call. Answers are ``{"code": 0, "message": "success",
"data": {...}, "timestamp": <ms>}``; a non-zero ``code`` is a refusal (HTTP stays 200).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.hmac_auth import hmac_sha256, verify_fresh, verify_mac
from adapters.wire_errors import MalformedMessage
from gateway.encoding import json_loads
from gateway.errors import TokenMalformed, TokenMissing, TokenSignature

CONTENT_TYPE = "application/json; charset=UTF-8"
API_ROOT = "/share/api/v1"
MAX_JSON_BYTES = 1 << 20

LICENSE_STATUS_PATH = f"{API_ROOT}/license/status"
LICENSE_FETCH_PATH = f"{API_ROOT}/license/fetch"
SUBMIT_PATH = f"{API_ROOT}/affairs/submit"
NOTIFY_PATH = f"{API_ROOT}/affairs/notify"
PING_PATH = f"{API_ROOT}/ping"

# Answer codes.
OK = 0
PARAMETER_INVALID = 10001
SIGNATURE_INVALID = 10002
TIMESTAMP_INVALID = 10003
APP_UNKNOWN = 10004
NONCE_REPLAYED = 10005
LICENSE_NOT_FOUND = 20001
PROJECT_NOT_FOUND = 20002
PROJECT_CONFLICT = 20003
AUTH_CODE_INVALID = 30001
AUTH_CODE_USED = 30002
INTERNAL = 50000
RESULT_TEXT: dict[int, str] = {
    OK: "success",
    PARAMETER_INVALID: "参数校验失败",
    SIGNATURE_INVALID: "签名校验失败",
    TIMESTAMP_INVALID: "请求已过期",
    APP_UNKNOWN: "应用未授权",
    NONCE_REPLAYED: "重复请求",
    LICENSE_NOT_FOUND: "证照不存在",
    PROJECT_NOT_FOUND: "办件不存在",
    PROJECT_CONFLICT: "办件编号重复且内容不一致",
    AUTH_CODE_INVALID: "授权码无效或已过期",
    AUTH_CODE_USED: "授权码已使用",
    INTERNAL: "系统内部错误",
}
RESULT_MEANING: dict[int, str] = {
    PARAMETER_INVALID: "our parameters were refused",
    SIGNATURE_INVALID: "our signature was refused",
    TIMESTAMP_INVALID: "our timestamp was refused",
    APP_UNKNOWN: "our application id is not authorised",
    NONCE_REPLAYED: "our nonce was seen before",
    LICENSE_NOT_FOUND: "license not found",
    PROJECT_NOT_FOUND: "request not found",
    PROJECT_CONFLICT: "same request id with a different body",
    AUTH_CODE_INVALID: "consent (QR token) invalid or expired",
    AUTH_CODE_USED: "consent (QR token) already used",
    INTERNAL: "internal error at the partner",
}
NOT_FOUND_CODES = frozenset({LICENSE_NOT_FOUND, PROJECT_NOT_FOUND})

# projectStatus <-> SPEC request statuses.
REQUEST_STATUS_FROM_CODE: dict[str, str] = {
    "RECEIVED": "received",  # 已接收
    "ACCEPTED": "accepted",  # 已受理
    "HANDLING": "in_progress",  # 办理中
    "SUPPLEMENT": "needs_supplement",  # 补齐补正
    "FINISHED": "completed",  # 办结
    "REJECTED": "rejected",  # 不予受理 / 不予许可
}
REQUEST_STATUS_TO_CODE: dict[str, str] = {v: k for k, v in REQUEST_STATUS_FROM_CODE.items()}
# certStatusCode: 01 正常, 02 废止, 03 暂停.
LICENSE_STATUS_FROM_CODE: dict[str, str] = {"01": "valid", "02": "revoked", "03": "suspended"}
LICENSE_STATUS_TO_CODE: dict[str, str] = {v: k for k, v in LICENSE_STATUS_FROM_CODE.items()}

_NONCE = re.compile(r"[0-9a-f]{32}")
_APP_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")
_MS = re.compile(r"[0-9]{13}")


@dataclass(frozen=True)
class SignedHeaders:
    app_id: str
    timestamp_ms: int
    nonce: str
    signature: bytes


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str, path: str, app_id: str, timestamp_ms: int, nonce: str, body: bytes
) -> bytes:
    parts = (method.upper(), path, app_id, str(timestamp_ms), nonce, body_digest(body))
    return "\n".join(parts).encode("utf-8")


def canonical_response(
    method: str, path: str, app_id: str, timestamp_ms: int, request_nonce: str, body: bytes
) -> bytes:
    return b"RESPONSE\n" + canonical_request(
        method, path, app_id, timestamp_ms, request_nonce, body
    )


def signature(key: bytes, canonical: bytes) -> str:
    return base64.b64encode(hmac_sha256(key, canonical)).decode("ascii")


def request_headers(
    key: bytes, method: str, path: str, app_id: str, timestamp_ms: int, nonce: str, body: bytes
) -> dict[str, str]:
    """The four signature headers of a call."""
    canonical = canonical_request(method, path, app_id, timestamp_ms, nonce, body)
    return {
        "X-App-Id": app_id,
        "X-Timestamp": str(timestamp_ms),
        "X-Nonce": nonce,
        "X-Signature": signature(key, canonical),
    }


def response_headers(
    key: bytes,
    method: str,
    path: str,
    app_id: str,
    timestamp_ms: int,
    request_nonce: str,
    body: bytes,
) -> dict[str, str]:
    canonical = canonical_response(method, path, app_id, timestamp_ms, request_nonce, body)
    return {"X-Timestamp": str(timestamp_ms), "X-Signature": signature(key, canonical)}


def _signature_bytes(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise TokenSignature("X-Signature is not base64") from None
    if len(raw) != 32:
        raise TokenSignature("X-Signature is not an HMAC-SHA256")
    return raw


def read_signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """The signature headers of a call: ``token_missing`` / ``token_malformed`` if bad."""
    values = {h: headers.get(h, "") for h in ("X-App-Id", "X-Timestamp", "X-Nonce", "X-Signature")}
    if not all(values.values()):
        raise TokenMissing("X-App-Id, X-Timestamp, X-Nonce and X-Signature are all required")
    if not _APP_ID.fullmatch(values["X-App-Id"]):
        raise TokenMalformed("X-App-Id is not an application id")
    if not _MS.fullmatch(values["X-Timestamp"]):
        raise TokenMalformed("X-Timestamp is not 13 digits of epoch milliseconds")
    if not _NONCE.fullmatch(values["X-Nonce"]):
        raise TokenMalformed("X-Nonce is not 32 lower-case hex characters")
    return SignedHeaders(
        app_id=values["X-App-Id"],
        timestamp_ms=int(values["X-Timestamp"]),
        nonce=values["X-Nonce"],
        signature=_signature_bytes(values["X-Signature"]),
    )


def verify_request(
    key: bytes, method: str, path: str, headers: Mapping[str, str], body: bytes, now: float
) -> SignedHeaders:
    """Every signature check of an inbound call, in order: form, MAC, freshness."""
    signed = read_signed_headers(headers)
    canonical = canonical_request(
        method, path, signed.app_id, signed.timestamp_ms, signed.nonce, body
    )
    verify_mac(key, canonical, signed.signature)
    verify_fresh(signed.timestamp_ms / 1000, now)
    return signed


def verify_response(
    key: bytes,
    method: str,
    path: str,
    app_id: str,
    request_nonce: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> None:
    """An answer's signature (bound to our nonce) and freshness; raises token errors."""
    ts = headers.get("X-Timestamp", "")
    sig = headers.get("X-Signature", "")
    if not ts or not sig:
        raise TokenMissing("the answer carries no X-Timestamp / X-Signature")
    if not _MS.fullmatch(ts):
        raise TokenMalformed("the answer's X-Timestamp is not epoch milliseconds")
    canonical = canonical_response(method, path, app_id, int(ts), request_nonce, body)
    verify_mac(key, canonical, _signature_bytes(sig))
    verify_fresh(int(ts) / 1000, now)


def decode_object(body: bytes, what: str = "the body") -> dict[str, Any]:
    """A JSON object from UTF-8 bytes, bounded; ``MalformedMessage`` otherwise."""
    if len(body) > MAX_JSON_BYTES:
        raise MalformedMessage(f"{what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        value = json_loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedMessage(f"{what} is not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise MalformedMessage(f"{what} is not a JSON object")
    return value


def decode_answer(body: bytes) -> tuple[int, dict[str, Any]]:
    """``(code, data)`` of a platform answer; ``data`` is ``{}`` when absent or null."""
    answer = decode_object(body, "the answer")
    code = answer.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        raise MalformedMessage("the answer has no integer code", field="code")
    data = answer.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MalformedMessage("the answer's data is not an object", field="data")
    return code, data


def text(obj: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = obj.get(name)
    if value is None or value == "":
        if required:
            raise MalformedMessage(f"field {name} is missing", field=name)
        return ""
    if not isinstance(value, str):
        raise MalformedMessage(f"field {name} is not a string", field=name)
    return value


def encode_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def answer_body(code: int, data: Mapping[str, Any] | None, timestamp_ms: int) -> bytes:
    return encode_json(
        {
            "code": code,
            "message": RESULT_TEXT.get(code, ""),
            "data": dict(data) if data is not None else None,
            "timestamp": timestamp_ms,
        }
    )
