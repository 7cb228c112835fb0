"""Reason codes of a license verdict (SPEC 4.5), in Chinese and English, with next steps.

Hall staff read these, not the check rows: each reason says what is wrong in one
sentence and what to do next at the window (窗口). The desk, the CLI and the verdict
JSON (``explanations``) all render from this one table, so the wording cannot drift
between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["REASONS", "REASON_CODES", "Reason", "ReasonCode", "explain"]

ReasonCode = Literal[
    "identifier_invalid",
    "signature_invalid",
    "chain_untrusted",
    "cert_expired",
    "issuer_mismatch",
    "not_yet_valid",
    "expired",
    "revoked",
    "suspended",
    "status_unknown",
    "holder_mismatch",
    "purpose_not_allowed",
    "qr_expired",
    "qr_replayed",
    "digest_mismatch",
    "not_issued",
]


@dataclass(frozen=True)
class Reason:
    """What a reason code means for staff, and what they should do next."""

    code: ReasonCode
    zh: str
    en: str
    next_zh: str
    next_en: str

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "next_zh": self.next_zh,
            "next_en": self.next_en,
        }


_TABLE: tuple[Reason, ...] = (
    Reason(
        "identifier_invalid",
        "证照标识或证照内容不合规：标识格式、校验位错误，或证照文件内容不完整。",
        "The license identifier or content is malformed: a wrong format or check character, "
        "or an incomplete license document.",
        "请持证人重新出示证照（重新生成亮证码或重新下载证照文件）；仍不通过的，请联系发证机关核实。",
        "Ask the holder to present the license again (a new QR code or a fresh download); "
        "if it still fails, contact the issuing authority.",
    ),
    Reason(
        "signature_invalid",
        "电子签名验证不通过：证照内容可能被篡改，或并非由发证机关签发。",
        "The electronic signature does not verify: the content may have been altered, or it "
        "was not signed by the issuing authority.",
        "不予采信该证照；请持证人通过官方渠道重新获取，必要时按规定登记上报。",
        "Do not accept the license; ask the holder to obtain it again through official "
        "channels, and report it where the rules require.",
    ),
    Reason(
        "chain_untrusted",
        "签发证书不受信任：未链接到受信任的省级根证书，或该证书不允许用于签名。",
        "The issuer certificate is not trusted: it does not chain to a trusted provincial "
        "root CA, or it is not allowed to sign.",
        "不予采信；请联系发证机关或本单位运维人员核实信任根配置（certs/trust）。",
        "Do not accept it; ask the issuing authority or your operator to check the trust "
        "anchors (certs/trust).",
    ),
    Reason(
        "cert_expired",
        "签发时签名证书不在有效期内（已过期或尚未生效）。",
        "The issuer certificate was not valid on the day the license was issued (expired "
        "or not yet valid).",
        "不予采信；请持证人联系发证机关重新签发证照。",
        "Do not accept it; ask the holder to have the license reissued by the issuing authority.",
    ),
    Reason(
        "issuer_mismatch",
        "证照上的发证机关统一社会信用代码与签名证书不一致。",
        "The issuing authority's unified social credit code on the license differs from "
        "the one in the signing certificate.",
        "不予采信；请持证人向发证机关核实证照来源。",
        "Do not accept it; ask the holder to check the license's origin with the issuing "
        "authority.",
    ),
    Reason(
        "not_yet_valid",
        "证照尚未生效（有效期起始日期或签发日期在今天之后）。",
        "The license is not valid yet (its start date or issue date is after today).",
        "请在生效日期后再办理，或请持证人提供其他有效证照。",
        "Proceed after the start date, or ask the holder for another valid license.",
    ),
    Reason(
        "expired",
        "证照已超过有效期。",
        "The license has expired.",
        "请持证人先办理证照延续或换领，再办理本事项。",
        "Ask the holder to renew the license first, then continue with this item.",
    ),
    Reason(
        "revoked",
        "证照已被发证机关注销或吊销。",
        "The license has been revoked by the issuing authority.",
        "不予采信；请告知持证人向发证机关咨询。",
        "Do not accept it; tell the holder to ask the issuing authority.",
    ),
    Reason(
        "suspended",
        "证照已被发证机关暂停使用。",
        "The license is suspended by the issuing authority.",
        "暂不办理；请持证人向发证机关了解恢复使用的条件。",
        "Do not proceed for now; the holder should ask the issuing authority how to have "
        "it reinstated.",
    ),
    Reason(
        "status_unknown",
        "暂时无法从发证地获取证照状态（发证地系统无法连接）。结论为“无法确定”，不是“无效”。",
        "The license status cannot be obtained from the issuing city right now (its "
        "system cannot be reached). The verdict is undetermined, not invalid.",
        "请稍后重试；确需当场受理的，按容缺受理规定办理并登记，待状态可查后补核。",
        "Try again later; if the case cannot wait, accept it under the pending-documents "
        "(容缺受理) rules, record it, and check the status once it can be reached.",
    ),
    Reason(
        "holder_mismatch",
        "持证人与申请人不一致。",
        "The license holder is not the applicant.",
        "请核对申请人身份，或请申请人出示本人证照；代为办理的，请提供授权委托材料。",
        "Check the applicant's identity or ask for their own license; someone acting for "
        "the holder must show a power of attorney.",
    ),
    Reason(
        "purpose_not_allowed",
        "当前办理事项的用证清单不包含该类证照，不能使用。",
        "The service item's purpose policy (用证清单) does not allow this license type.",
        "请核对所选办理事项，或请持证人提供该事项要求的证照。",
        "Check the chosen service item, or ask the holder for the license type it requires.",
    ),
    Reason(
        "qr_expired",
        "亮证码已过期。",
        "The QR code (亮证码) has expired.",
        "请持证人在手机上刷新亮证码后重新扫码。",
        "Ask the holder to refresh the QR code on their phone and scan it again.",
    ),
    Reason(
        "qr_replayed",
        "亮证码已使用过（一码一用）。",
        "The QR code has already been used (each code works once).",
        "请持证人重新生成亮证码；如非持证人本人操作，请提醒其注意证照安全。",
        "Ask the holder to make a new QR code; if they did not use it themselves, warn "
        "them that someone else may have it.",
    ),
    Reason(
        "digest_mismatch",
        "亮证码与发证地返回的证照不一致（摘要不符）。",
        "The QR code does not match the license the issuing city returned (digest mismatch).",
        "请持证人重新生成亮证码；仍不一致的，请联系发证机关。",
        "Ask the holder to make a new QR code; if it still does not match, contact the "
        "issuing authority.",
    ),
    Reason(
        "not_issued",
        "发证地没有该证照的签发记录。",
        "The issuing city has no record of issuing this license.",
        "不予采信；该证照可能系伪造，请按规定核查并登记上报。",
        "Do not accept it; the license may be forged: check and report it as the rules require.",
    ),
)

REASONS: dict[str, Reason] = {r.code: r for r in _TABLE}
"""Every reason code of SPEC 4.5 with its texts, by code."""

REASON_CODES: tuple[ReasonCode, ...] = tuple(r.code for r in _TABLE)


def explain(codes: tuple[str, ...] | list[str]) -> list[dict[str, str]]:
    """The staff texts for ``codes``, in the same order (the verdict's ``explanations``)."""
    return [REASONS[c].to_json() for c in codes]
