"""A verdict as hall staff see it: reasons in words, disclosed fields only, ids masked.

The verifier decides *what* may be shown (the holder's consent intersected with the
service item's purpose policy); this module decides *how*: fields flattened to the
catalog's dotted names in the item's order, identity numbers masked the way Chinese
government pages do (``1101**********002X``) wherever they appear, each reason with its
Chinese and English text and next step, and the issuing city by name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gateway.config import NodeConfig
from gateway.errors import ValidationFailed
from gateway.exchange.catalog import ServiceItem
from gateway.licenses.identifiers import parse_license_identifier
from gateway.licenses.reasons import REASONS
from gateway.licenses.verdict import Verdict
from gateway.privacy import MASKED_FIELDS, mask_embedded_ids, mask_id


def _flatten(value: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping):
            yield from _flatten(item, path + ".")
        else:
            yield path, item


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "、".join(_text(v) for v in value)
    return str(value)


def shown_fields(
    license_fields: Mapping[str, Any], item: ServiceItem | None
) -> list[dict[str, str]]:
    """The disclosed fields as ``[{name, value}]``, masked, in the item's order."""
    flat = dict(_flatten(license_fields))
    order = list(item.disclosed_fields) if item is not None else []
    names = [n for n in order if n in flat] + sorted(n for n in flat if n not in order)
    out = []
    for name in names:
        value = _text(flat[name])
        value = mask_id(value) if name in MASKED_FIELDS else mask_embedded_ids(value)
        out.append({"name": name, "value": value})
    return out


def reasons_view(codes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each reason code with its staff texts (zh/en) and next step (zh/en)."""
    out = []
    for code in codes:
        reason = REASONS.get(code)
        if reason is None:  # a code this desk does not know yet still shows, as itself
            out.append({"code": code, "text": {"zh": code, "en": code}, "next": None})
            continue
        out.append(
            {
                "code": code,
                "text": {"zh": reason.zh, "en": reason.en},
                "next": {"zh": reason.next_zh, "en": reason.next_en},
            }
        )
    return out


def issuer_view(cfg: NodeConfig, verdict: Verdict, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The issuing city (this node or the partner answering for the issuer's USCC)."""
    code = verdict.issuer_code
    if code is None and verdict.identifier:  # a QR stopped before the fetch still names it
        try:
            code = parse_license_identifier(verdict.identifier).issuer_code
        except ValidationFailed:
            code = None
    issuer = fields.get("issuer")
    authority = issuer.get("name") if isinstance(issuer, Mapping) else None
    if code is not None and code == cfg.issuer_uscc:
        return {"node": cfg.id, "city": cfg.name, "authority": authority or cfg.issuer_name}
    partner = cfg.partner_for_issuer(code) if code else None
    if partner is None:
        return {"node": None, "city": None, "authority": authority}
    return {"node": partner.id, "city": partner.name, "authority": authority}


def status_checked_at(verdict: Verdict) -> str | None:
    """When the issuing city's status was obtained; ``None`` when it could not be."""
    explicit = verdict.meta.get("status_checked_at")
    if isinstance(explicit, str):
        return explicit
    row = verdict.check("status")
    if row is None or row.result == "unknown":
        return None
    return verdict.checked_at


def desk_view(cfg: NodeConfig, verdict: Verdict, item: ServiceItem | None) -> dict[str, Any]:
    """The whole result the verify page renders (without the usage record)."""
    return {
        "verdict": verdict.verdict,
        "reasons": reasons_view(verdict.reasons),
        "checks": [row.to_json() for row in verdict.checks],
        "fields": shown_fields(verdict.license, item),
        "issuer": issuer_view(cfg, verdict, verdict.license),
        "checked_at": verdict.checked_at,
        "status_checked_at": status_checked_at(verdict),
        "status_cached": bool(verdict.meta.get("status_cached")),
        "source": verdict.source,
        "purpose": None
        if item is None
        else {"code": item.code, "name": {"zh": item.name, "en": item.name_en or item.name}},
    }
