"""Zhuzhou's gateway format (株洲政务服务网关): signed form posts, JSON answers.

Every call is ``POST <base>/zzzw/gateway.do`` with an
``application/x-www-form-urlencoded; charset=UTF-8`` body::

    app_id=360800&method=bj.submit&timestamp=2026-01-15 10:30:00&nonce=9f1c...
    &version=1.0&sign_type=HMAC-SHA256&sqbh=<request id>&sxbm=TB-430200-0305
    &sqr={"name":...}&zzbh_list=1.2.156...,1.2.156...&bdsj={...}&sqsj=2026-01-15 10:29:58
    &sign=6F1E...

``sign`` is the upper-case hex HMAC-SHA256, under the partner's ``hmac.key``, of every
other non-empty parameter as ``k=v`` joined by ``&`` in key order, values *not*
URL-encoded (the habit of Chinese payment-style gateways). ``timestamp`` is Beijing time
and must be within five minutes. Nested values travel as JSON text in one parameter.

Answers are JSON objects with string codes (``rtn_code`` ``"0"`` is success), served
as ``text/html`` by the partner's servlet container, so the content type is ignored.
A submission is answered at once with ``{"status": "pending", "ticket": ...}``; its
progress is read later with ``bj.query`` (the node polls).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from adapters.hmac_auth import hmac_sha256, verify_mac
from adapters.wire_errors import MalformedMessage
from adapters.wire_time import from_dashed_beijing, rfc3339
from gateway.encoding import json_loads
from gateway.errors import TokenMissing, TokenSignature
from gateway.exchange.model import StatusEvent

CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
GATEWAY_PATH = "/zzzw/gateway.do"
MAX_FORM_BYTES = 256 * 1024
MAX_FIELDS = 64
MAX_REPLY_JSON_BYTES = 1 << 20
MAX_HISTORY = 100

# Methods (接口名).
STATUS_QUERY = "zz.status.query"  # 证照状态查询
FETCH = "zz.fetch"  # 证照调取
SUBMIT = "bj.submit"  # 办件提交 (answers pending + ticket)
QUERY = "bj.query"  # 办件查询 (the poll)
NOTIFY = "bj.notify"  # 办件状态通知 (events from the handling side)
PING = "sys.ping"
METHODS = frozenset({STATUS_QUERY, FETCH, SUBMIT, QUERY, NOTIFY, PING})

# rtn_code values.
OK = "0"
LICENSE_NOT_FOUND = "1001"
REQUEST_NOT_FOUND = "1002"
DUPLICATE_CONFLICT = "1003"
SIGNATURE_INVALID = "2001"
PARAMETER_INVALID = "2002"
TIMESTAMP_INVALID = "2003"
METHOD_UNKNOWN = "2004"
CONSENT_INVALID = "3001"
CONSENT_USED = "3002"
BUSY = "9999"
RESULT_TEXT: dict[str, str] = {
    OK: "成功",
    LICENSE_NOT_FOUND: "证照不存在",
    REQUEST_NOT_FOUND: "办件不存在",
    DUPLICATE_CONFLICT: "申请编号重复",
    SIGNATURE_INVALID: "签名错误",
    PARAMETER_INVALID: "参数错误",
    TIMESTAMP_INVALID: "时间戳无效",
    METHOD_UNKNOWN: "接口不存在",
    CONSENT_INVALID: "授权码无效",
    CONSENT_USED: "授权码已使用",
    BUSY: "系统繁忙，请稍后再试",
}
RESULT_MEANING: dict[str, str] = {
    LICENSE_NOT_FOUND: "license not found",
    REQUEST_NOT_FOUND: "request not found",
    DUPLICATE_CONFLICT: "same request id with a different body",
    SIGNATURE_INVALID: "our signature was refused",
    PARAMETER_INVALID: "our parameters were refused",
    TIMESTAMP_INVALID: "our timestamp was refused",
    METHOD_UNKNOWN: "method not supported",
    CONSENT_INVALID: "consent (QR token) invalid or expired",
    CONSENT_USED: "consent (QR token) already used",
    BUSY: "partner busy",
}

# 办理状态 (blzt) <-> SPEC statuses. "0" 待受理 is where every request starts.
REQUEST_STATUS_FROM_CODE: dict[str, str] = {
    "0": "received",  # 待受理
    "1": "accepted",  # 已受理
    "2": "in_progress",  # 办理中
    "3": "needs_supplement",  # 需补正
    "4": "completed",  # 办结
    "8": "rejected",  # 不予许可
    "9": "rejected",  # 不予受理
}
REQUEST_STATUS_TO_CODE: dict[str, str] = {
    "received": "0",
    "accepted": "1",
    "in_progress": "2",
    "needs_supplement": "3",
    "completed": "4",
    "rejected": "9",
}
STATUS_NAMES: dict[str, str] = {
    "0": "待受理",
    "1": "已受理",
    "2": "办理中",
    "3": "需补正",
    "4": "办结",
    "8": "不予许可",
    "9": "不予受理",
}
# 证照状态 (zzzt): 1 有效, 2 注销, 3 暂扣.
LICENSE_STATUS_FROM_CODE: dict[str, str] = {"1": "valid", "2": "revoked", "3": "suspended"}
LICENSE_STATUS_TO_CODE: dict[str, str] = {v: k for k, v in LICENSE_STATUS_FROM_CODE.items()}


def encode_form(params: Mapping[str, str]) -> bytes:
    return urlencode(list(params.items())).encode("utf-8")


def decode_form(body: bytes) -> dict[str, str]:
    """A strict form body: UTF-8, ``k=v`` pairs, no repeated keys, bounded size."""
    if len(body) > MAX_FORM_BYTES:
        raise MalformedMessage(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise MalformedMessage("the form is not UTF-8") from exc
    except ValueError as exc:
        raise MalformedMessage("the form is not k=v pairs") from exc
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise MalformedMessage(f"form field {key[:40]} is repeated", field=key[:40])
        params[key] = value
    return params


def string_to_sign(params: Mapping[str, str]) -> bytes:
    """``k=v&...`` over every non-empty parameter but ``sign``, in key order."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k]).encode(
        "utf-8"
    )


def sign_params(key: bytes, params: Mapping[str, str]) -> str:
    return hmac_sha256(key, string_to_sign(params)).hex().upper()


def verify_params(key: bytes, params: Mapping[str, str]) -> None:
    """``token_missing`` without ``sign``; ``token_signature`` unless it verifies."""
    given = params.get("sign", "")
    if not given:
        raise TokenMissing("the form has no sign")
    try:
        mac = bytes.fromhex(given)
    except ValueError:
        raise TokenSignature("sign is not hex") from None
    verify_mac(key, string_to_sign(params), mac)


def required(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"field {name} is missing or not text", field=name)
    return value


def json_field(params: Mapping[str, str], name: str) -> dict[str, Any]:
    """A parameter holding a JSON object as text (``sqr``, ``bdsj``)."""
    try:
        value = json_loads(params.get(name) or "{}")
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"field {name} is not JSON", field=name) from exc
    if not isinstance(value, dict):
        raise MalformedMessage(f"field {name} is not a JSON object", field=name)
    return value


def decode_reply(body: bytes) -> dict[str, Any]:
    """A gateway answer: a JSON object with a string ``rtn_code``."""
    if len(body) > MAX_REPLY_JSON_BYTES:
        raise MalformedMessage("the answer is too large")
    try:
        value = json_loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedMessage("the answer is not UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise MalformedMessage("the answer is not a JSON object")
    if not isinstance(value.get("rtn_code"), str):
        raise MalformedMessage("the answer has no rtn_code", field="rtn_code")
    return value


def events_from_history(request_id: str, history: object) -> list[StatusEvent]:
    """``lsjl`` (流水记录) entries as events, oldest first, without the initial 待受理."""
    if not isinstance(history, list) or len(history) > MAX_HISTORY:
        raise MalformedMessage("lsjl is not a list of records", field="lsjl")
    events: list[StatusEvent] = []
    for entry in history:
        if not isinstance(entry, dict):
            raise MalformedMessage("an lsjl record is not an object", field="lsjl")
        code = required(entry, "blzt")
        status = REQUEST_STATUS_FROM_CODE.get(code)
        if status is None:
            raise MalformedMessage("blzt is not a known 办理状态 code", field="blzt")
        at = rfc3339(from_dashed_beijing(required(entry, "blsj"), field="blsj"))
        note = entry.get("blyj", "")
        if status == "received":
            continue
        events.append(
            StatusEvent(
                request_id=request_id,
                status=status,  # type: ignore[arg-type]
                at=at,
                note=note if isinstance(note, str) else "",
                meta={"partner_status": code},
            )
        )
    return events
