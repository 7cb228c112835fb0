"""The checks of a license verification, each a small function producing one row.

``examine_license`` runs the offline checks in order — identifier, signature, chain,
certificate, issuer, validity — on a license JWS. The ones that need the network or the
caller's input (status, holder, purpose) are plain functions of what was fetched or
asked, so that ``gateway.licenses.service`` only wires I/O around pure code.

A check whose input is missing because an earlier one failed does not guess: its row
is ``unknown`` with no code ("not checked"), and the earlier failure already makes the
verdict invalid.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.exchange.catalog import ServiceItem
from gateway.licenses.document import (
    ID_TYPE_RESIDENT,
    DocumentError,
    LicenseDocument,
    read_document_bytes,
)
from gateway.licenses.identifiers import (
    IdentifierError,
    parse_license_identifier,
    validate_resident_id,
    validate_uscc,
)
from gateway.licenses.license_jws import LICENSE_JWS_TYPE, LicenseJws, es256_verify
from gateway.licenses.policy import PurposePolicy
from gateway.licenses.status import StatusAnswer
from gateway.licenses.trust import TrustedChain, TrustStore, UntrustedChain, subject_uscc
from gateway.licenses.verdict import Check, not_checked

__all__ = [
    "CHINA_TZ",
    "HolderClaim",
    "LicenseExamination",
    "check_holder",
    "check_purpose",
    "check_status",
    "examine_license",
]

CHINA_TZ = timezone(timedelta(hours=8), "CST")
"""License dates are calendar days in China Standard Time (UTC+8, no daylight saving)."""


@dataclass(frozen=True)
class HolderClaim:
    """The holder a caller expects (the applicant at the window): id and optional type."""

    id: str
    id_type: str | None = None


@dataclass(frozen=True)
class LicenseExamination:
    """The offline checks of one license and what they established."""

    checks: tuple[Check, ...]
    document: LicenseDocument | None
    authentic: bool
    """Identifier, signature, chain, certificate and issuer all passed: the document
    is what its issuing authority signed, so asking its status is meaningful."""


def _fail(name: str, code: str, detail: str) -> Check:
    return Check(name, "fail", code, detail)


def _pass(name: str, detail: str) -> Check:
    return Check(name, "pass", None, detail)


@functools.lru_cache(maxsize=4096)
def _identifier_problem(
    identifier: str, type_code: str, issuer_code: str, holder: tuple[str, str], today: date
) -> tuple[str, str | None]:
    """``(canonical identifier, problem or None)``; pure, so cached (bounded)."""
    try:
        parsed = parse_license_identifier(identifier)
    except IdentifierError as exc:
        return identifier, f"identifier: {exc.reason}"
    if parsed.type_code != type_code:
        return str(parsed), "the identifier's type code is not type_code"
    if parsed.issuer_code != issuer_code:
        return str(parsed), "the identifier's issuer code is not issuer.code"
    id_type, holder_id = holder
    try:
        if id_type == ID_TYPE_RESIDENT:
            validate_resident_id(holder_id, field="holder.id", today=today)
        else:
            validate_uscc(holder_id, field="holder.id")
    except IdentifierError as exc:
        return str(parsed), f"holder.id: {exc.reason}"
    return str(parsed), None


def check_identifier(
    document: LicenseDocument | None, problem: DocumentError | None, today: date
) -> Check:
    """The document is a license document and every identifier in it is well-formed."""
    name = "identifier"
    if document is None:
        reason = problem.detail if problem else "no document"
        return _fail(name, "identifier_invalid", f"the signed content is not a {reason}")
    holder = (document.holder.id_type, document.holder.id)
    canonical, found = _identifier_problem(
        document.identifier, document.type_code, document.issuer.code, holder, today
    )
    if found is not None:
        return _fail(name, "identifier_invalid", found)
    return _pass(name, f"{canonical} is a well-formed GB/T 36904 identifier matching the document")


def check_signature(jws: LicenseJws, leaf: x509.Certificate | None, problem: str | None) -> Check:
    """ES256 by the key of the first ``x5c`` certificate, with the license ``typ``."""
    name = "signature"
    header = jws.header
    if header.get("alg") != "ES256":
        return _fail(name, "signature_invalid", "the header alg must be ES256")
    if header.get("typ") != LICENSE_JWS_TYPE:
        return _fail(name, "signature_invalid", f"the header typ must be {LICENSE_JWS_TYPE}")
    if "crit" in header:
        return _fail(name, "signature_invalid", "the header lists critical extensions")
    if leaf is None:
        return _fail(name, "signature_invalid", problem or "no issuer certificate")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return _fail(name, "signature_invalid", "the issuer certificate's key is not P-256")
    try:
        es256_verify(key, jws.signing_input, jws.signature)
    except (InvalidSignature, ValueError):
        return _fail(
            name, "signature_invalid", "the signature does not verify with the certificate's key"
        )
    return _pass(name, "ES256 signature verifies with the issuer certificate's key")


def check_certificate(chain: TrustedChain | None, document: LicenseDocument | None) -> Check:
    """Every certificate of the path was valid on the day the license was issued.

    The issuance instant within the day is not signed, so a certificate counts as valid
    at issuance when its validity overlaps that calendar day (China time).
    """
    name = "certificate"
    if chain is None or document is None:
        return not_checked(name, "no trusted chain or no document")
    start = datetime.combine(document.issued_on, time.min, CHINA_TZ).timestamp()
    end = start + 86_400
    for cert, (not_before, not_after) in zip(chain.path, chain.validity, strict=True):
        if not (not_before < end and not_after >= start):
            which = "the issuer certificate" if cert is chain.leaf else "a CA certificate"
            first = cert.not_valid_before_utc.date()
            last = cert.not_valid_after_utc.date()
            return _fail(
                name,
                "cert_expired",
                f"{which} was not valid on {document.issued_on} (valid {first} to {last})",
            )
    return _pass(name, f"the certificates were valid on the issue date {document.issued_on}")


def check_issuer(leaf: x509.Certificate | None, document: LicenseDocument | None) -> Check:
    """The certificate's subject serialNumber is the document's ``issuer.code``."""
    name = "issuer"
    if leaf is None or document is None:
        return not_checked(name, "no issuer certificate or no document")
    uscc = subject_uscc(leaf)
    if uscc is None:
        return _fail(name, "issuer_mismatch", "the certificate names no USCC (serialNumber)")
    if uscc != document.issuer.code:
        return _fail(
            name,
            "issuer_mismatch",
            f"issuer.code {document.issuer.code} is not the certificate's USCC {uscc}",
        )
    return _pass(name, f"issuer.code {uscc} is the certificate's USCC")


def check_validity(document: LicenseDocument | None, today: date) -> Check:
    """Today (China time) lies within the license's validity window."""
    name = "validity"
    if document is None:
        return not_checked(name, "no document")
    if document.valid_from > today or document.issued_on > today:
        start = max(document.valid_from, document.issued_on)
        return _fail(name, "not_yet_valid", f"valid from {start}; today is {today}")
    until = document.valid_until
    if until is not None and until < today:
        return _fail(name, "expired", f"valid until {until}; today is {today}")
    window = f"until {until}" if until else "long-term"
    return _pass(name, f"valid from {document.valid_from}, {window}")


def check_status(answer: StatusAnswer | None) -> Check:
    """The issuing node's word on the license (SPEC 4.3)."""
    name = "status"
    if answer is None:
        return not_checked(name, "the license is not authentic, so its status was not asked")
    cached = " (cached)" if answer.cached else ""
    if answer.outcome == "unknown":
        return Check(name, "unknown", "status_unknown", answer.detail)
    if answer.outcome == "not_issued":
        return _fail(name, "not_issued", f"{answer.source} has no record of this license")
    status = answer.status
    assert status is not None  # a known answer always carries the status
    if status.status == "valid":
        return _pass(name, f"valid according to {answer.source}{cached}")
    since = f" since {status.since}" if status.since else ""
    why = f": {status.reason}" if status.reason else ""
    return _fail(name, status.status, f"{status.status}{since}{why} ({answer.source}{cached})")


def check_holder(document: LicenseDocument | None, claim: HolderClaim) -> Check:
    """The license belongs to the holder the caller named (without repeating either id)."""
    name = "holder"
    if document is None:
        return not_checked(name, "no document")
    if claim.id_type is not None and claim.id_type != document.holder.id_type:
        return _fail(name, "holder_mismatch", "the holder's id type differs from the one given")
    if claim.id.strip().upper() != document.holder.id.strip().upper():
        return _fail(name, "holder_mismatch", "the license holder is not the holder given")
    return _pass(name, "the license holder is the holder given")


def check_purpose(document: LicenseDocument | None, item: ServiceItem) -> Check:
    """The service item's purpose policy (用证清单) allows this license type."""
    name = "purpose"
    if document is None:
        return not_checked(name, "no document")
    if not PurposePolicy.allows(item, document.type_code):
        return _fail(
            name,
            "purpose_not_allowed",
            f"service item {item.code} may not read license type {document.type_code}",
        )
    return _pass(name, f"service item {item.code} may read license type {document.type_code}")


def _leaf(
    jws: LicenseJws, trust: TrustStore
) -> tuple[tuple[bytes, ...], x509.Certificate | None, str | None]:
    try:
        ders = jws.x5c()
        return ders, trust.certificate(ders[0]), None
    except ValueError as exc:
        return (), None, str(exc) or "the first x5c entry is not a DER certificate"


def check_chain(
    ders: tuple[bytes, ...], problem: str | None, trust: TrustStore
) -> tuple[Check, TrustedChain | None]:
    """The ``x5c`` chain leads to a trusted provincial root (see ``gateway.licenses.trust``)."""
    name = "chain"
    if not ders:
        return _fail(name, "chain_untrusted", problem or "no usable certificate chain"), None
    try:
        chain = trust.chain(ders)
    except UntrustedChain as exc:
        return _fail(name, "chain_untrusted", str(exc)), None
    return _pass(name, "the issuer certificate chains to a trusted provincial root"), chain


def examine_license(jws: LicenseJws, trust: TrustStore, *, today: date) -> LicenseExamination:
    """Run every offline check on a license in order; never raises for bad content."""
    document: LicenseDocument | None = None
    problem: DocumentError | None = None
    try:
        document = read_document_bytes(jws.payload)
    except DocumentError as exc:
        problem = exc
    ders, leaf, leaf_problem = _leaf(jws, trust)
    chain_row, chain = check_chain(ders, leaf_problem, trust)
    rows = (
        check_identifier(document, problem, today),
        check_signature(jws, leaf, leaf_problem),
        chain_row,
        check_certificate(chain, document),
        check_issuer(leaf, document),
        check_validity(document, today),
    )
    authentic = all(row.result == "pass" for row in rows[:5])
    return LicenseExamination(checks=rows, document=document, authentic=authentic)
