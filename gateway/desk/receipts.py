"""Usage-record references (用证记录): ``TBR1:<node>:<seq>:<leaf>`` and their QR code.

A printed usage record names the audit entry of the verification it records: the
node, the entry's ``seq`` and its leaf hash (unpadded base64url). With the node's
signed checkpoint and an inclusion proof, anyone holding the paper can check that the
verification is in the log and that the entry was not changed (auditor page, or
``tongban audit verify-receipt``). The reference holds no personal data and no host
name, so it stays valid when the desk moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import segno

from gateway.audit.events import AuditReceipt
from gateway.encoding import b64u_decode, b64u_encode
from gateway.errors import ValidationFailed

PREFIX = "TBR1:"
_REF_RE = re.compile(r"TBR1:(cn-[0-9]{6}):(0|[1-9][0-9]{0,15}):([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class ReceiptRef:
    """Which entry of which node's log a usage record points at."""

    node: str
    seq: int
    leaf: bytes

    def text(self) -> str:
        return f"{PREFIX}{self.node}:{self.seq}:{b64u_encode(self.leaf)}"

    @classmethod
    def of(cls, node: str, receipt: AuditReceipt) -> ReceiptRef:
        return cls(node=node, seq=receipt.seq, leaf=receipt.leaf)


def parse_receipt_ref(text: str) -> ReceiptRef:
    """Parse a reference (as scanned or pasted); raises ``ValidationFailed`` on ``ref``."""
    value = text.strip() if isinstance(text, str) else ""
    m = _REF_RE.fullmatch(value)
    if m is None:
        raise ValidationFailed(
            "not a usage-record reference", fields={"ref": "expected TBR1:<node>:<seq>:<leaf>"}
        )
    try:
        leaf = b64u_decode(m[3])
    except ValueError:
        leaf = b""
    if len(leaf) != 32 or b64u_encode(leaf) != m[3]:
        raise ValidationFailed("bad leaf hash", fields={"ref": "leaf is not a 32-byte hash"})
    return ReceiptRef(node=m[1], seq=int(m[2]), leaf=leaf)


def qr_data_uri(text: str) -> str:
    """An SVG QR code of ``text`` as a ``data:`` URI (fits the desk's CSP ``img-src data:``)."""
    qr = segno.make(text, error="m")
    return str(qr.svg_data_uri(scale=4, border=2, dark="#000", light="#fff"))
