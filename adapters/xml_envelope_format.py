"""Longyan's XML envelope (协同报文), GB18030 text: pure encoding and decoding.

Every message, request, reply or callback alike, is one envelope::

    <?xml version="1.0" encoding="GB18030"?>
    <PACKAGE>
      <HEAD>
        <VERSION>1.0</VERSION>
        <SEND_CODE>360800</SEND_CODE><SEND_NAME>吉安市</SEND_NAME>
        <RECV_CODE>350800</RECV_CODE><RECV_NAME>龙岩市</RECV_NAME>
        <BUSI_CODE>DZZZ0101</BUSI_CODE>        业务类别代码 (business class)
        <XTBH>360800-20260115103000-1a2b3c</XTBH>  协同编号 (collaboration number)
        <SEND_TIME>20260115103000</SEND_TIME>    Beijing time
      </HEAD>
      <BODY>
        <RECORD><CODE>0000</CODE><MSG>成功</MSG><DATA>...</DATA></RECORD>
      </BODY>
    </PACKAGE>

``DATA`` holds named fields (pinyin initials of the national data elements, as the
Fujian systems write them): a leaf element is text; an element of ``<ITEM KEY="k">``
children is a table (``TYPE="json"`` marks a non-text value written as JSON); an
element of bare ``<ITEM>`` children is a list. A reply echoes the request's ``XTBH``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adapters.safe_xml import decode_xml_bytes, parse_xml
from adapters.wire_errors import MalformedMessage
from adapters.wire_time import from_compact_beijing, to_compact_beijing
from gateway.encoding import json_loads

CHARSET = "GB18030"
CONTENT_TYPE = "text/xml; charset=GB18030"
VERSION = "1.0"
MAX_RECORDS = 100
MAX_FIELD_CHARS = 64 * 1024

# 业务类别代码: what a message is about.
LICENSE_STATUS = "DZZZ0101"  # 证照状态查询
LICENSE_FETCH = "DZZZ0102"  # 证照调取 (with the holder's 亮证码 as consent)
SUBMIT = "KSTB0201"  # 跨省通办办件推送
STATUS_NOTIFY = "KSTB0202"  # 办件状态反馈
HEARTBEAT = "XT0000"  # 心跳
BUSINESS_CLASSES = frozenset({LICENSE_STATUS, LICENSE_FETCH, SUBMIT, STATUS_NOTIFY, HEARTBEAT})

# Record result codes (CODE) and what they mean to us.
OK = "0000"
LICENSE_NOT_FOUND = "1001"
REQUEST_NOT_FOUND = "1002"
DUPLICATE_CONFLICT = "1003"
SIGNATURE_INVALID = "2001"
FORMAT_INVALID = "2002"
TIME_INVALID = "2003"
BUSINESS_UNKNOWN = "2004"
CONSENT_INVALID = "3001"
CONSENT_USED = "3002"
INTERNAL = "9999"
RESULT_TEXT: dict[str, str] = {
    OK: "成功",
    LICENSE_NOT_FOUND: "证照不存在",
    REQUEST_NOT_FOUND: "办件不存在",
    DUPLICATE_CONFLICT: "申办流水号重复且内容不一致",
    SIGNATURE_INVALID: "签名验证失败",
    FORMAT_INVALID: "报文格式错误",
    TIME_INVALID: "发送时间超出允许范围",
    BUSINESS_UNKNOWN: "业务类别代码不支持",
    CONSENT_INVALID: "授权码无效或已过期",
    CONSENT_USED: "授权码已使用",
    INTERNAL: "系统异常",
}
RESULT_MEANING: dict[str, str] = {
    LICENSE_NOT_FOUND: "license not found",
    REQUEST_NOT_FOUND: "request not found",
    DUPLICATE_CONFLICT: "same request id with a different body",
    SIGNATURE_INVALID: "our signature was refused",
    FORMAT_INVALID: "our message was refused as malformed",
    TIME_INVALID: "our send time was refused",
    BUSINESS_UNKNOWN: "business class not supported",
    CONSENT_INVALID: "consent (QR token) invalid or expired",
    CONSENT_USED: "consent (QR token) already used",
    INTERNAL: "internal error at the partner",
}

# 办件状态 (BJZT) <-> SPEC request statuses. 06 不予受理 and 07 不予许可 are both "rejected".
REQUEST_STATUS_FROM_CODE: dict[str, str] = {
    "01": "received",  # 已接收
    "02": "accepted",  # 已受理
    "03": "in_progress",  # 办理中
    "04": "needs_supplement",  # 补齐补正
    "05": "completed",  # 办结
    "06": "rejected",  # 不予受理
    "07": "rejected",  # 不予许可
}
REQUEST_STATUS_TO_CODE: dict[str, str] = {
    "received": "01",
    "accepted": "02",
    "in_progress": "03",
    "needs_supplement": "04",
    "completed": "05",
    "rejected": "06",
}
# 证照状态 (ZZZT) <-> SPEC license statuses.
LICENSE_STATUS_FROM_CODE: dict[str, str] = {"01": "valid", "02": "revoked", "03": "suspended"}
LICENSE_STATUS_TO_CODE: dict[str, str] = {v: k for k, v in LICENSE_STATUS_FROM_CODE.items()}

FieldValue = str | list[str] | dict[str, Any]

_DIVISION = re.compile(r"[0-9]{6}")
_RESULT_CODE = re.compile(r"[0-9]{4}")
_XTBH = re.compile(r"[0-9A-Za-z_-]{8,64}")
# Characters XML 1.0 cannot carry at all (C0 controls but tab, CR, LF; surrogates; FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Header:
    version: str
    sender_code: str
    sender_name: str
    receiver_code: str
    receiver_name: str
    business_class: str
    collab_no: str
    send_time: datetime


@dataclass(frozen=True)
class Record:
    code: str
    msg: str
    data: Mapping[str, FieldValue] = field(default_factory=dict)

    def text(self, name: str, *, required: bool = True) -> str:
        """A text field of ``DATA``; ``MalformedMessage`` if required and absent or empty."""
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise MalformedMessage(f"record field {name} is missing", field=name)
            return ""
        if not isinstance(value, str):
            raise MalformedMessage(f"record field {name} is not text", field=name)
        return value

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, "")
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise MalformedMessage(f"record field {name} is not a table of ITEMs", field=name)
        return value

    def items(self, name: str) -> list[str]:
        value = self.data.get(name, "")
        if value == "":
            return []
        if not isinstance(value, list):
            raise MalformedMessage(f"record field {name} is not a list of ITEMs", field=name)
        return value


@dataclass(frozen=True)
class Envelope:
    header: Header
    records: tuple[Record, ...]

    @property
    def first(self) -> Record:
        return self.records[0]


def division_code(node_id: str) -> str:
    """The GB/T 2260 code inside a node id (``cn-350800`` -> ``350800``)."""
    return node_id.removeprefix("cn-")


# ------------------------------------------------------------------ encoding


def _checked(text: str, where: str) -> str:
    if _NOT_XML.search(text):
        raise MalformedMessage(f"{where} holds characters XML cannot carry", field=where)
    if len(text) > MAX_FIELD_CHARS:
        raise MalformedMessage(f"{where} is longer than {MAX_FIELD_CHARS} characters", field=where)
    return text


def _leaf(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = _checked(text, tag)
    return el


def _put_value(parent: ET.Element, name: str, value: FieldValue) -> None:
    if isinstance(value, str):
        _leaf(parent, name, value)
        return
    el = ET.SubElement(parent, name)
    if isinstance(value, list):
        for item in value:
            _leaf(el, "ITEM", str(item))
        return
    for key, item in value.items():
        sub = ET.SubElement(el, "ITEM", {"KEY": _checked(str(key), f"{name} key")})
        # Text XML would alter (CR becomes LF) or cannot carry travels as JSON instead.
        if isinstance(item, str) and "\r" not in item and not _NOT_XML.search(item):
            sub.text = _checked(item, f"{name}.{key}")
        else:
            sub.set("TYPE", "json")
            sub.text = _checked(json.dumps(item, ensure_ascii=False, sort_keys=True), name)


def encode_envelope(env: Envelope) -> bytes:
    """The GB18030 bytes of an envelope, with its XML declaration."""
    root = ET.Element("PACKAGE")
    head = ET.SubElement(root, "HEAD")
    h = env.header
    for tag, text in (
        ("VERSION", h.version),
        ("SEND_CODE", h.sender_code),
        ("SEND_NAME", h.sender_name),
        ("RECV_CODE", h.receiver_code),
        ("RECV_NAME", h.receiver_name),
        ("BUSI_CODE", h.business_class),
        ("XTBH", h.collab_no),
        ("SEND_TIME", to_compact_beijing(h.send_time)),
    ):
        _leaf(head, tag, text)
    body = ET.SubElement(root, "BODY")
    for rec in env.records:
        r = ET.SubElement(body, "RECORD")
        _leaf(r, "CODE", rec.code)
        _leaf(r, "MSG", rec.msg)
        if rec.data:
            data = ET.SubElement(r, "DATA")
            for name, value in rec.data.items():
                _put_value(data, name, value)
    text = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="{CHARSET}"?>\n{text}'.encode(CHARSET)


# ------------------------------------------------------------------ decoding


def _child_text(parent: ET.Element, tag: str, where: str, *, allow_empty: bool = False) -> str:
    found = parent.findall(tag)
    if len(found) != 1:
        what = "missing" if not found else "repeated"
        raise MalformedMessage(f"{where} {tag} is {what}", field=tag)
    el = found[0]
    if len(el):
        raise MalformedMessage(f"{where} {tag} must be text", field=tag)
    text = (el.text or "").strip()
    if not text and not allow_empty:
        raise MalformedMessage(f"{where} {tag} is empty", field=tag)
    return text


def _get_value(el: ET.Element) -> FieldValue:
    children = list(el)
    if not children:
        return (el.text or "").strip()
    if any(c.tag != "ITEM" or len(c) for c in children):
        raise MalformedMessage(f"field {el.tag} holds elements other than ITEM", field=el.tag)
    keyed = ["KEY" in c.attrib for c in children]
    if not any(keyed):
        return [(c.text or "").strip() for c in children]
    if not all(keyed):
        raise MalformedMessage(f"field {el.tag} mixes keyed and bare ITEMs", field=el.tag)
    table: dict[str, Any] = {}
    for c in children:
        key = c.attrib["KEY"]
        if key in table:
            raise MalformedMessage(f"field {el.tag} repeats a KEY", field=el.tag)
        text = c.text or ""
        if c.attrib.get("TYPE") == "json":
            try:
                table[key] = json_loads(text)
            except (ValueError, RecursionError) as exc:
                raise MalformedMessage(f"field {el.tag} holds bad JSON", field=el.tag) from exc
        else:
            table[key] = text
    return table


def _record(el: ET.Element) -> Record:
    code = _child_text(el, "CODE", "RECORD")
    if not _RESULT_CODE.fullmatch(code):
        raise MalformedMessage("RECORD CODE is not four digits", field="CODE")
    msg = _child_text(el, "MSG", "RECORD", allow_empty=True)
    data_els = el.findall("DATA")
    if len(data_els) > 1:
        raise MalformedMessage("RECORD DATA is repeated", field="DATA")
    data: dict[str, FieldValue] = {}
    if data_els:
        for child in data_els[0]:
            if child.tag in data:
                raise MalformedMessage(f"DATA field {child.tag} is repeated", field=child.tag)
            data[child.tag] = _get_value(child)
    return Record(code=code, msg=msg, data=data)


def decode_envelope(body: bytes, charset: str | None) -> Envelope:
    """Read one envelope; ``charset`` is the HTTP one (``None`` if the sender gave none).

    The text must be GB18030 both by the transport and by the XML declaration; any
    structural problem raises ``MalformedMessage`` naming the element.
    """
    declared = (charset or "").upper()
    if declared and declared != CHARSET:
        raise MalformedMessage(f"the message is in charset {declared[:20]}, expected {CHARSET}")
    root = parse_xml(decode_xml_bytes(body, CHARSET))
    if root.tag != "PACKAGE":
        raise MalformedMessage("the root element is not PACKAGE", field="PACKAGE")
    heads = root.findall("HEAD")
    bodies = root.findall("BODY")
    if len(heads) != 1 or len(bodies) != 1:
        raise MalformedMessage("PACKAGE needs exactly one HEAD and one BODY", field="PACKAGE")
    head = heads[0]
    version = _child_text(head, "VERSION", "HEAD")
    if version != VERSION:
        raise MalformedMessage(f"envelope version {version[:10]} is not supported", field="VERSION")
    header = Header(
        version=version,
        sender_code=_child_text(head, "SEND_CODE", "HEAD"),
        sender_name=_child_text(head, "SEND_NAME", "HEAD"),
        receiver_code=_child_text(head, "RECV_CODE", "HEAD"),
        receiver_name=_child_text(head, "RECV_NAME", "HEAD"),
        business_class=_child_text(head, "BUSI_CODE", "HEAD"),
        collab_no=_child_text(head, "XTBH", "HEAD"),
        send_time=from_compact_beijing(_child_text(head, "SEND_TIME", "HEAD"), field="SEND_TIME"),
    )
    for name, value in (("SEND_CODE", header.sender_code), ("RECV_CODE", header.receiver_code)):
        if not _DIVISION.fullmatch(value):
            raise MalformedMessage(f"HEAD {name} is not a 6-digit division code", field=name)
    if not _XTBH.fullmatch(header.collab_no):
        raise MalformedMessage("HEAD XTBH is not a collaboration number", field="XTBH")
    records = bodies[0].findall("RECORD")
    if not records or len(records) > MAX_RECORDS or len(records) != len(bodies[0]):
        raise MalformedMessage(f"BODY needs 1 to {MAX_RECORDS} RECORDs only", field="BODY")
    return Envelope(header=header, records=tuple(_record(r) for r in records))


def reply_to(request: Header, records: tuple[Record, ...], *, send_time: datetime) -> Envelope:
    """The reply envelope: sender and receiver swapped, same business class and ``XTBH``."""
    header = Header(
        version=VERSION,
        sender_code=request.receiver_code,
        sender_name=request.receiver_name,
        receiver_code=request.sender_code,
        receiver_name=request.sender_name,
        business_class=request.business_class,
        collab_no=request.collab_no,
        send_time=send_time,
    )
    return Envelope(header=header, records=records)


def result(code: str, data: Mapping[str, FieldValue] | None = None) -> Record:
    """A result record with the standard text for ``code``."""
    return Record(code=code, msg=RESULT_TEXT.get(code, ""), data=dict(data or {}))
