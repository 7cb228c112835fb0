"""The one place a node verifies, serves and mints licenses (SPEC 4), whoever asks.

The HTTP API (``gateway.http.licenses_api``), the CLI (``tongban license``) and the
hall desk all call a ``LicenseService``: it holds the node's license register, trust
anchors, status resolver, adapters and replay cache, and runs pure checks
(``gateway.licenses.checks``) around the I/O it does itself. Nothing else decides a
verdict.

Verifying a 亮证码 (SPEC 4.4), in order:

1. ``qr`` — the token is signed by the registered token key of the node that minted it
   (this node or a partner), that node answers for the license's issuer, and ``lid``
   is a valid identifier;
2. ``qr_validity`` — ``exp`` has not passed and the lifetime is at most 180 s (30 s
   clock leeway between nodes, as for request tokens);
3. ``purpose`` — when a purpose is named and ``lid``'s type code is not allowed, the
   license is not fetched at all: no personal data moves for a refused purpose;
4. ``fetch`` — the token is claimed once here (a second scan at this node is
   ``qr_replayed`` without a round trip), then the license is fetched from the minting
   node, which claims it once more for every verifier;
5. ``digest`` — ``ldh`` is the digest of what came back;
6. the license checks, as for a license given directly, and only the fields the
   purpose may see *and* the holder consented to are disclosed.

Fields are disclosed only for an authentic license (identifier, signature, chain,
certificate and issuer checks passed), whose type the purpose may read, and — when the
caller names the holder — of that holder: a stranger's license is not shown to someone
who is not its holder. An expired, suspended or revoked license is still shown, since
staff need to see what they are refusing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from adapters.base import PartnerAdapter
from gateway.audit.events import ActorType, AuditEvent, AuditLog, AuditReceipt
from gateway.config import NodeConfig
from gateway.encoding import canonical_json
from gateway.errors import GatewayError, NotFound, TokenReplayed, ValidationFailed
from gateway.exchange.catalog import Catalog, ServiceItem, load_catalog
from gateway.keys import load_token_key
from gateway.licenses.checks import (
    CHINA_TZ,
    HolderClaim,
    check_holder,
    check_purpose,
    check_status,
    examine_license,
)
from gateway.licenses.document import validate_holder_id
from gateway.licenses.errors import ConsentRefused
from gateway.licenses.identifiers import IdentifierError, parse_license_identifier
from gateway.licenses.issuing import mint_license_qr
from gateway.licenses.license_jws import LicenseJws, es256_verify, parse_license_jws
from gateway.licenses.live_status import StatusResolver
from gateway.licenses.policy import ALL_FIELDS, PurposePolicy
from gateway.licenses.qr import DEFAULT_QR_LIFETIME, MAX_QR_LIFETIME, QrToken, parse_qr
from gateway.licenses.status import LicenseStatus
from gateway.licenses.store import AsyncLicenseStore, StoredLicense, license_db_path
from gateway.licenses.trust import TrustStore
from gateway.licenses.verdict import Check, Verdict, not_checked
from gateway.tokens import (
    KeyRegistry,
    RedisReplayCache,
    ReplayCache,
    SigningKey,
    SqliteReplayCache,
)
from gateway.tokens.verify import CLOCK_LEEWAY

__all__ = [
    "LICENSES",
    "Actor",
    "LicenseService",
    "VerifyRequest",
    "open_license_service",
    "read_verify_request",
    "verification_audit_event",
    "verify_license_request",
]

QR_CLAIM_PREFIX = "qr:"
"""Replay-cache issuer under which a minting node claims its QR tokens' ``jti``."""
QR_SEEN_PREFIX = "qr-seen:"
"""Replay-cache issuer under which a verifier remembers the QR tokens it used."""
FETCH_TIMEOUT = 3.0
"""Longest a verification waits for the issuing node to hand over a license; with the
status wait, a QR verification still answers inside a caller's 10 s."""

LICENSE_CHECKS = ("identifier", "signature", "chain", "certificate", "issuer", "validity")
_VERIFY_KEYS = frozenset({"license", "qr", "holder", "holder_id", "purpose"})


@dataclass(frozen=True)
class VerifyRequest:
    """One verification: a license JWS or a 亮证码, and optionally whom and what for."""

    license: str | None = None
    qr: str | None = None
    holder: HolderClaim | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class Actor:
    """Who asked, for audit entries the caller appends itself (CLI, desk)."""

    type: ActorType
    id: str
    sub: str | None = None


def _bad(field: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {reason}", fields={field: reason})


def read_verify_request(body: Mapping[str, Any]) -> VerifyRequest:
    """Validate a verify request body (``POST /v1/licenses/verify``) into a value.

    Exactly one of ``license`` / ``qr``; ``holder`` {``id_type``, ``id``} or
    ``holder_id``; ``purpose`` a service item code. Unknown members are refused so a
    typo (``"purpse"``) cannot silently skip a check.
    """
    unknown = sorted(set(body) - _VERIFY_KEYS)
    if unknown:
        raise _bad(unknown[0], "is not a member of a verify request")
    license_text, qr_text = body.get("license"), body.get("qr")
    if (license_text is None) == (qr_text is None):
        raise _bad("license", "give exactly one of license (a JWS) or qr (TB1:...)")
    for name, value in (("license", license_text), ("qr", qr_text)):
        if value is not None and not isinstance(value, str):
            raise _bad(name, "must be a string")
    if "holder" in body and "holder_id" in body:
        raise _bad("holder", "give holder or holder_id, not both")
    holder: HolderClaim | None = None
    if "holder" in body:
        given = body["holder"]
        if not isinstance(given, dict) or set(given) - {"id", "id_type"}:
            raise _bad("holder", "must be an object with id and optionally id_type")
        id_type, value = validate_holder_id(
            given.get("id"), given.get("id_type"), field="holder.id"
        )
        holder = HolderClaim(value, id_type if given.get("id_type") is not None else None)
    elif "holder_id" in body:
        _, value = validate_holder_id(body["holder_id"], None, field="holder_id")
        holder = HolderClaim(value)
    purpose = body.get("purpose")
    if purpose is not None and (not isinstance(purpose, str) or not 0 < len(purpose) <= 64):
        raise _bad("purpose", "must be a service item code")
    return VerifyRequest(license=license_text, qr=qr_text, holder=holder, purpose=purpose)


def _rfc3339(seconds: float) -> str:
    return _rfc3339_whole(math.floor(seconds))


@functools.lru_cache(maxsize=256)
def _rfc3339_whole(seconds: int) -> str:
    # Every verdict carries ``checked_at``; within one second they are all the same text.
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _fail(name: str, code: str, detail: str) -> Check:
    return Check(name, "fail", code, detail)


class LicenseService:
    """A node's license concern: verify anything, and serve what it issued itself."""

    def __init__(
        self,
        *,
        cfg: NodeConfig,
        catalog: Catalog,
        store: AsyncLicenseStore,
        trust: TrustStore,
        adapters: Mapping[str, PartnerAdapter],
        replay: ReplayCache,
        token_key: SigningKey,
        registry: KeyRegistry | None = None,
        clock: Callable[[], float] = time.time,
        fetch_timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.cfg = cfg
        self.policy = PurposePolicy(catalog)
        self.store = store
        self.trust = trust
        self.adapters = adapters
        self.replay = replay
        self.token_key = token_key
        self.registry = registry if registry is not None else cfg.key_registry()
        self.clock = clock
        """Wall-clock seconds: QR expiry, "today" for validity windows, ``checked_at``."""
        self.statuses = StatusResolver(cfg=cfg, adapters=adapters, local=store)
        self._fetch_timeout = fetch_timeout

    def today(self) -> date:
        """Today in China Standard Time, the calendar license dates are written in."""
        return datetime.fromtimestamp(self.clock(), CHINA_TZ).date()

    # ------------------------------------------------------------- verification

    async def verify(self, request: VerifyRequest) -> Verdict:
        """Verify a license or a 亮证码; the verdict is the answer even when invalid.

        Raises only for bad input (``ValidationFailed``) or a node that cannot work
        safely (``ReplayCacheUnavailable``, ``ServiceUnavailable``).
        """
        item = self.policy.item(request.purpose) if request.purpose else None
        if request.qr is not None:
            return await self._verify_qr(request, item)
        jws = parse_license_jws(request.license)
        return await self._verify_license(jws, request, item, rows=[], consent=(ALL_FIELDS,))

    async def _verify_license(
        self,
        jws: LicenseJws,
        request: VerifyRequest,
        item: ServiceItem | None,
        *,
        rows: list[Check],
        consent: Sequence[str],
        source: Literal["license", "qr"] = "license",
        meta: dict[str, Any] | None = None,
    ) -> Verdict:
        exam = examine_license(jws, self.trust, today=self.today())
        rows.extend(exam.checks)
        document = exam.document
        status = (
            await self.statuses.lookup(document.identifier, document.issuer.code)
            if exam.authentic and document is not None
            else None
        )
        rows.append(check_status(status))
        allowed = True  # the fields are shown only for an authentic license of this holder
        if request.holder is not None:
            holder_row = check_holder(document, request.holder)
            allowed = holder_row.result == "pass"
            rows.append(holder_row)
        if item is not None:
            purpose_row = check_purpose(document, item)
            allowed = allowed and purpose_row.result == "pass"
            rows.append(purpose_row)
        shown: dict[str, Any] = {}
        if exam.authentic and document is not None and allowed:
            shown = self.policy.disclose(document, item, consent)
        return Verdict.from_checks(
            tuple(rows),
            checked_at=_rfc3339(self.clock()),
            license=shown,
            identifier=document.identifier if document else None,
            source=source,
            purpose=item.code if item else None,
            type_code=document.type_code if document else None,
            issuer_code=document.issuer.code if document else None,
            meta={**(meta or {}), **({"status_cached": status.cached} if status else {})},
        )

    def _stopped(
        self, rows: list[Check], token: QrToken, request: VerifyRequest, why: str
    ) -> Verdict:
        """The verdict when the QR steps already failed: the license checks did not run."""
        done = {row.name for row in rows}
        for name in ("qr_validity", "fetch", "digest", *LICENSE_CHECKS, "status"):
            if name not in done:
                rows.append(not_checked(name, why))
        if request.holder is not None:
            rows.append(not_checked("holder", why))
        if request.purpose is not None and "purpose" not in done:
            rows.append(not_checked("purpose", why))
        return Verdict.from_checks(
            tuple(rows),
            checked_at=_rfc3339(self.clock()),
            license={},
            identifier=token.lid,
            source="qr",
            purpose=request.purpose,
            meta={"qr_iss": token.iss, "qr_jti": token.jti},
        )

    def _qr_key(
        self, token: QrToken
    ) -> tuple[str, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey, str] | None:
        """``(owner node, public key, alg)`` of the key that signed a QR token."""
        if token.kid == self.token_key.kid:
            public = self.token_key.private_key.public_key()
            return self.cfg.id, public, self.token_key.alg
        registered = self.registry.get(token.kid)
        if registered is None:
            return None
        return registered.partner, registered.public_key, registered.alg

    def _check_qr_token(self, token: QrToken) -> Check:
        name = "qr"
        found = self._qr_key(token)
        if found is None:
            return _fail(
                name, "signature_invalid", "the QR code's key is not a key of a known node"
            )
        owner, public, alg = found
        if token.alg != alg:
            return _fail(name, "signature_invalid", f"the QR code's alg must be {alg}")
        try:
            if isinstance(public, ec.EllipticCurvePublicKey):
                es256_verify(public, token.signing_input, token.signature)
            else:
                public.verify(token.signature, token.signing_input)
        except (InvalidSignature, ValueError):
            return _fail(
                name, "signature_invalid", f"the signature does not verify with {owner}'s key"
            )
        if token.iss != owner:
            return _fail(
                name, "signature_invalid", "iss is not the node that owns the QR code's key"
            )
        try:
            lid = parse_license_identifier(token.lid, field="lid")
        except IdentifierError as exc:
            return _fail(name, "identifier_invalid", f"lid: {exc.reason}")
        answering = (
            self.cfg.id
            if lid.issuer_code == self.cfg.issuer_uscc
            else getattr(self.cfg.partner_for_issuer(lid.issuer_code), "id", None)
        )
        if answering != owner:
            return _fail(
                name,
                "issuer_mismatch",
                f"{owner} minted the QR code but does not answer for issuer {lid.issuer_code}",
            )
        return Check(name, "pass", None, f"minted and signed by {owner}")

    def _check_qr_validity(self, token: QrToken) -> Check:
        name = "qr_validity"
        now = self.clock()
        if token.exp - token.iat > MAX_QR_LIFETIME or token.exp < token.iat:
            return _fail(name, "qr_expired", f"the QR code lives longer than {MAX_QR_LIFETIME} s")
        if token.exp < now - CLOCK_LEEWAY:
            return _fail(name, "qr_expired", f"the QR code expired at {_rfc3339(token.exp)}")
        if token.iat > now + CLOCK_LEEWAY:
            return _fail(name, "qr_expired", "the QR code was minted in the future")
        return Check(name, "pass", None, f"valid until {_rfc3339(token.exp)}")

    async def _fetch(self, token: QrToken, purpose: str | None) -> tuple[Check, str | None]:
        """Claim the token here, then fetch the license from the node that minted it."""
        name = "fetch"
        try:
            await self.replay.claim(
                QR_SEEN_PREFIX + token.iss,
                token.jti,
                float(token.exp + CLOCK_LEEWAY),
                secrets.token_hex(8),
            )
        except TokenReplayed:
            return _fail(
                name, "qr_replayed", f"this QR code was already used at {self.cfg.id}"
            ), None
        try:
            if token.iss == self.cfg.id:
                stored = await self.fetch(token.jws, purpose=purpose)
                jws_text = stored.jws
            else:
                adapter = self.adapters.get(token.iss)
                if adapter is None:
                    detail = f"no adapter is running for {token.iss}"
                    return Check(name, "unknown", "status_unknown", detail), None
                async with asyncio.timeout(self._fetch_timeout):
                    jws_text = await adapter.license_fetch(token.jws, purpose=purpose)
        except ConsentRefused as exc:
            return _fail(name, exc.reason, f"{token.iss} refused the QR code: {exc.detail}"), None
        except NotFound:
            return _fail(name, "not_issued", f"{token.iss} has no record of this license"), None
        except TimeoutError:
            return Check(name, "unknown", "status_unknown", f"{token.iss} did not answer"), None
        except GatewayError as exc:
            if token.iss == self.cfg.id and exc.status < 500:
                raise  # our own refusal of a malformed token is a bad request, not unknown
            detail = f"{token.iss} could not hand over the license ({exc.code})"
            return Check(name, "unknown", "status_unknown", detail), None
        return Check(
            name, "pass", None, f"fetched from {token.iss} with the holder's consent"
        ), jws_text

    async def _verify_qr(self, request: VerifyRequest, item: ServiceItem | None) -> Verdict:
        token = parse_qr(request.qr)
        rows: list[Check] = []
        for check in (self._check_qr_token, self._check_qr_validity):
            row = check(token)
            rows.append(row)
            if row.result != "pass":
                return self._stopped(rows, token, request, "the QR code is not valid")
        if item is not None:
            type_code = parse_license_identifier(token.lid).type_code
            if not self.policy.allows(item, type_code):
                rows.append(
                    _fail(
                        "purpose",
                        "purpose_not_allowed",
                        f"service item {item.code} may not read license type {type_code}",
                    )
                )
                return self._stopped(rows, token, request, "the purpose may not read this license")
        fetch_row, jws_text = await self._fetch(token, item.code if item else None)
        rows.append(fetch_row)
        if jws_text is None:
            return self._stopped(rows, token, request, "the license was not fetched")
        try:
            jws = parse_license_jws(jws_text)
        except ValidationFailed:
            rows[-1] = _fail(
                "fetch", "signature_invalid", f"{token.iss} returned no signed license"
            )
            return self._stopped(rows, token, request, "the license was not fetched")
        if jws.digest != token.ldh:
            rows.append(
                _fail("digest", "digest_mismatch", "ldh is not the digest of the fetched license")
            )
            return self._stopped(
                rows, token, request, "the fetched license is not the one consented to"
            )
        rows.append(Check("digest", "pass", None, "ldh is the digest of the fetched license"))
        return await self._verify_license(
            jws,
            request,
            item,
            rows=rows,
            consent=token.sco,
            source="qr",
            meta={"qr_iss": token.iss, "qr_jti": token.jti},
        )

    # ------------------------------------------------------------- issuing node

    async def fetch(self, qr_text: object, *, purpose: str | None = None) -> StoredLicense:
        """Hand over a license this node issued, for a valid QR token it minted (consent).

        Raises ``ValidationFailed`` (not a QR token), ``ConsentRefused`` (not ours, bad
        signature, expired, already used) or ``NotFound`` (no such license here).
        """
        if purpose is not None:
            self.policy.item(purpose)
        token = parse_qr(qr_text, require_prefix=False)
        if token.iss != self.cfg.id or token.kid != self.token_key.kid:
            raise ConsentRefused("signature_invalid", "the QR code was not minted by this node")
        public = self.token_key.private_key.public_key()
        try:
            if token.alg != self.token_key.alg or not isinstance(public, ec.EllipticCurvePublicKey):
                raise ValueError("wrong algorithm")
            es256_verify(public, token.signing_input, token.signature)
        except (InvalidSignature, ValueError):
            raise ConsentRefused(
                "signature_invalid", "the QR code's signature does not verify"
            ) from None
        validity = self._check_qr_validity(token)
        if validity.result != "pass":
            raise ConsentRefused("qr_expired", validity.detail)
        stored = await self.store.get(token.lid)
        if stored is None:
            raise NotFound("this node has not issued that license")
        try:
            await self.replay.claim(
                QR_CLAIM_PREFIX + self.cfg.id,
                token.jti,
                float(token.exp + CLOCK_LEEWAY),
                secrets.token_hex(8),
            )
        except TokenReplayed:
            raise ConsentRefused("qr_replayed", "this QR code was already used") from None
        return stored

    async def status(self, identifier: str) -> LicenseStatus:
        """The status of a license this node issued; ``NotFound`` for any other.

        A malformed identifier is a ``ValidationFailed`` naming the wrong part.
        """
        return await self.store.status(str(parse_license_identifier(identifier)))

    async def mint_qr(
        self,
        identifier: str,
        *,
        fields: Sequence[str] | None = None,
        lifetime: int = DEFAULT_QR_LIFETIME,
    ) -> str:
        """A 亮证码 for a license this node issued (the holder's home city)."""
        parse_license_identifier(identifier)
        return mint_license_qr(
            await self.store.get(identifier),
            self.token_key,
            node_id=self.cfg.id,
            policy=self.policy,
            fields=fields,
            lifetime=lifetime,
            now=self.clock(),
        )


# ----------------------------------------------------------------- audit and wiring

LICENSES = web.AppKey("licenses", LicenseService)
"""The node's ``LicenseService`` (set up by ``gateway.http.licenses_api.setup``)."""


def verification_audit_event(
    verdict: Verdict,
    actor: Actor,
    *,
    request: bytes | None = None,
    response: bytes | None = None,
) -> AuditEvent:
    """The audit entry of a verification that was not an HTTP call (CLI, desk).

    The subject is the license identifier (the log pseudonymises it); the fields shown
    go into the erasable payload; ``meta`` holds the outcome only.
    """
    return AuditEvent(
        event="license.verify",
        actor_type=actor.type,
        actor_id=actor.id,
        actor_sub=actor.sub,
        subject=verdict.identifier,
        request=request,
        response=response,
        payload=verdict_payload(verdict),
        meta=verdict.audit_meta(),
    )


def verdict_payload(verdict: Verdict) -> bytes | None:
    """The personal data a verification showed, for the audit payload store.

    Any fixed serialisation will do: the entry commits to these exact bytes with a salt,
    and nothing re-serialises them. The C ``json`` encoder costs a tenth of RFC 8785's
    pure-Python one, on every verification.
    """
    if len(verdict.license) <= 1:
        return None
    return json.dumps(
        {"license": verdict.license}, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()


async def verify_license_request(
    app: web.Application, request: VerifyRequest, *, actor: Actor, audit: AuditLog | None = None
) -> tuple[Verdict, AuditReceipt]:
    """Verify in-process (the hall desk) and append the audit entry for it.

    ``audit`` defaults to the application's audit log (``gateway.http.context.AUDIT``).
    """
    from gateway.http.context import AUDIT

    verdict = await app[LICENSES].verify(request)
    log = audit if audit is not None else app[AUDIT]
    response = canonical_json(verdict.to_json())
    receipt = await log.append(verification_audit_event(verdict, actor, response=response))
    return verdict, receipt


@asynccontextmanager
async def open_license_service(
    cfg: NodeConfig, *, audit: AuditLog | None = None, clock: Callable[[], float] = time.time
) -> AsyncIterator[LicenseService]:
    """A ``LicenseService`` for node ``cfg`` outside a running node (the CLI).

    It opens the node's own register and replay cache (both safe to share with a
    running node) and one adapter per partner, so partner calls go over HTTP to the
    running partner nodes exactly as the node would make them, and are recorded in
    ``audit`` when given.
    """
    from adapters import make_adapter

    token_key = load_token_key(cfg)
    replay: RedisReplayCache | SqliteReplayCache = (
        RedisReplayCache(cfg.redis_url)
        if cfg.redis_url
        else SqliteReplayCache(cfg.data_dir / "replay.db")
    )
    adapters = {p.id: make_adapter(cfg, p, token_key, audit=audit) for p in cfg.partners}
    store = AsyncLicenseStore(license_db_path(cfg))
    try:
        yield LicenseService(
            cfg=cfg,
            catalog=load_catalog(cfg.catalog_path),
            store=store,
            trust=TrustStore.from_dir(cfg.trust_dir),
            adapters=adapters,
            replay=replay,
            token_key=token_key,
            clock=clock,
        )
    finally:
        for adapter in adapters.values():
            await adapter.close()
        await store.close()
        await replay.close()
