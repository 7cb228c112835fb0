"""What only the issuing node does: sign new licenses, change their status, mint 亮证码.

An issuing node decides the parts of a document that say who issued it — the
identifier (GB/T 36904: catalog type code, this node's issuer USCC, the next serial,
version ``001``), ``issuer``, ``type_name``, ``area_code`` — and refuses a draft that
tries to set them differently, so a document can never claim another authority. The
rest (holder, dates, ``data``) comes from the draft and is validated before signing:
an issued license is immutable, so a mistake has to be caught here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from gateway.config import NodeConfig
from gateway.encoding import canonical_json
from gateway.errors import Conflict, NotFound, ValidationFailed
from gateway.exchange.catalog import Catalog
from gateway.keys import Issuer
from gateway.licenses.document import (
    DocumentError,
    LicenseDocument,
    parse_date,
    read_document,
    validate_holder_id,
)
from gateway.licenses.identifiers import make_license_identifier
from gateway.licenses.license_jws import SignedLicense, sign_license
from gateway.licenses.policy import ALL_FIELDS, PurposePolicy
from gateway.licenses.qr import DEFAULT_QR_LIFETIME, mint_qr
from gateway.licenses.status import LicenseStatus, StatusValue
from gateway.licenses.store import LicenseStore, StoredLicense
from gateway.tokens.mint import SigningKey

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "change_status",
    "issuable_document",
    "issue_license",
    "mint_license_qr",
    "utc_now_text",
]

MAX_DOCUMENT_BYTES = 32 * 1024
"""Largest canonical document an issuing node signs."""

MAX_ISSUE_ATTEMPTS = 3
"""Serial allocation retries when another process took the same serial."""

_DECIDED_BY_NODE = ("type_name", "issuer", "area_code")


def utc_now_text(now: datetime | None = None) -> str:
    """RFC 3339 UTC to the second, the form of ``since``."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bad(field: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {reason}", fields={field: reason})


def _holder(draft: Mapping[str, Any], today: date) -> dict[str, str]:
    holder = draft.get("holder")
    if not isinstance(holder, dict):
        raise _bad("holder", "is required: an object with name, id and id_type")
    name = holder.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        raise _bad("holder.name", "is required, 1 to 100 characters")
    id_type, holder_id = validate_holder_id(
        holder.get("id"), holder.get("id_type"), field="holder.id", today=today
    )
    return {"name": name.strip(), "id_type": id_type, "id": holder_id}


def issuable_document(
    draft: Mapping[str, Any],
    *,
    cfg: NodeConfig,
    catalog: Catalog,
    serial: str,
    today: date,
) -> LicenseDocument:
    """Complete a draft with what this node decides and validate everything.

    Raises ``ValidationFailed`` naming the field; details never repeat personal data.
    """
    if "identifier" in draft:
        raise _bad("identifier", "is made by the issuing node; leave it out")
    type_code = draft.get("type_code")
    license_type = catalog.license_types.get(type_code) if isinstance(type_code, str) else None
    if license_type is None:
        raise _bad("type_code", "is not a license type of the catalog")
    decided: dict[str, Any] = {
        "type_name": license_type.name,
        "issuer": {"name": cfg.issuer_name, "code": cfg.issuer_uscc},
        "area_code": cfg.id.removeprefix("cn-"),
    }
    for name in _DECIDED_BY_NODE:
        if name in draft and draft[name] != decided[name]:
            raise _bad(name, "is decided by the issuing node; leave it out or give its value")
    try:
        issued_on = parse_date(draft.get("issued_on", today.isoformat()), "issued_on")
        valid_from = parse_date(draft.get("valid_from", issued_on.isoformat()), "valid_from")
        until = draft.get("valid_until")
        valid_until = None if until is None else parse_date(until, "valid_until")
    except DocumentError as exc:
        raise _bad(exc.field, exc.reason) from None
    if issued_on > today:
        raise _bad("issued_on", "cannot be after today")
    if valid_until is not None and valid_until < valid_from:
        raise _bad("valid_until", "is before valid_from")
    data = draft.get("data", {})
    if not isinstance(data, dict):
        raise _bad("data", "must be an object of type-specific fields")
    number = draft.get("number", f"{decided['area_code']}{serial}")
    if not isinstance(number, str) or not 1 <= len(number) <= 100:
        raise _bad("number", "must be 1 to 100 characters")
    document = dict(draft)
    document.update(decided)
    document.update(
        identifier=make_license_identifier(license_type.code, cfg.issuer_uscc, serial),
        type_code=license_type.code,
        number=number,
        holder=_holder(draft, today),
        issued_on=issued_on.isoformat(),
        valid_from=valid_from.isoformat(),
        valid_until=None if valid_until is None else valid_until.isoformat(),
        data=data,
    )
    try:
        size = len(canonical_json(document))
    except (TypeError, ValueError):
        raise _bad("document", "holds values JSON cannot carry exactly") from None
    if size > MAX_DOCUMENT_BYTES:
        raise _bad("document", f"is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return read_document(document)
    except DocumentError as exc:
        raise _bad(exc.field, exc.reason) from None


def issue_license(
    store: LicenseStore,
    issuer: Issuer,
    draft: Mapping[str, Any],
    *,
    cfg: NodeConfig,
    catalog: Catalog,
    today: date,
    now: datetime | None = None,
) -> tuple[SignedLicense, LicenseDocument]:
    """Sign a new license from ``draft`` and record it as ``valid`` in the register."""
    for _ in range(MAX_ISSUE_ATTEMPTS):
        serial = store.next_serial(today.year)
        document = issuable_document(draft, cfg=cfg, catalog=catalog, serial=serial, today=today)
        signed = sign_license(issuer, document.raw)
        try:
            store.add(signed, document, serial=serial, since=utc_now_text(now))
        except Conflict:
            continue  # another process took this serial between our read and write
        return signed, document
    raise Conflict("could not allocate a serial; try again")


def change_status(
    store: LicenseStore,
    identifier: str,
    status: StatusValue,
    *,
    reason: str,
    now: datetime | None = None,
) -> tuple[LicenseStatus, LicenseStatus]:
    """Revoke, suspend or reinstate; ``since`` is now. Returns ``(before, after)``."""
    reason = reason.strip()
    if not 1 <= len(reason) <= 200:
        raise _bad("reason", "is required, 1 to 200 characters")
    return store.set_status(identifier, status, reason=reason, since=utc_now_text(now))


def mint_license_qr(
    stored: StoredLicense | None,
    key: SigningKey,
    *,
    node_id: str,
    policy: PurposePolicy,
    fields: Sequence[str] | None = None,
    lifetime: int = DEFAULT_QR_LIFETIME,
    now: float | None = None,
) -> str:
    """A 亮证码 for a license this node issued, consenting to ``fields`` (default all)."""
    if stored is None:
        raise NotFound("this node has not issued that license")
    consent = tuple(fields) if fields else (ALL_FIELDS,)
    policy.check_consent(stored.type_code, consent, field="fields")
    try:
        return mint_qr(
            key,
            iss=node_id,
            lid=stored.identifier,
            ldh=stored.digest,
            sco=consent,
            lifetime=lifetime,
            now=now,
        )
    except ValueError as exc:
        raise _bad("fields" if "version" in str(exc) else "lifetime", str(exc)) from None
