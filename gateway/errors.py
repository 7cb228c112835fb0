"""Errors with stable codes (SPEC sections 2 and 3).

Every failure a caller can see is a ``GatewayError`` subclass carrying the stable
``code`` and HTTP ``status`` from the SPEC. The HTTP layer turns them into
problem+json in one place (``gateway.http.problem``); the CLI prints ``detail``.
``detail`` is written for people and never holds personal data or secrets.

    GatewayError
    ├── ConfigError                       (not HTTP: bad configuration file)
    ├── AuthError                  401    token_missing, token_malformed, partner_unknown,
    │                                     token_algorithm, token_signature, token_claims,
    │                                     token_expired, token_not_yet_valid,
    │                                     token_lifetime, token_audience, token_binding,
    │                                     token_replayed
    ├── AccessError                403    partner_suspended, forbidden
    ├── RateLimited                429    rate_limited (retry_after)
    ├── ReplayCacheUnavailable     503    replay_cache_unavailable
    ├── RequestError               4xx    body_too_large 413, invalid_json 400,
    │                                     validation_failed 400, not_found 404,
    │                                     method_not_allowed 405, conflict 409
    ├── UpstreamError              5xx    upstream_unavailable 502, upstream_timeout 504
    ├── ServiceUnavailable         503    storage_unavailable (the node refuses new work)
    └── InternalError              500    internal
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error a caller may see; ``code`` and ``status`` are stable."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = extra or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class ConfigError(GatewayError):
    """A configuration file is wrong; the message names the file, the key and why."""

    code = "config_invalid"
    status = 500
    title = "Configuration error"

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


class AuthError(GatewayError):
    """The request token was refused (SPEC 2)."""

    status = 401
    title = "Unauthorized"


class TokenMissing(AuthError):
    code = "token_missing"


class TokenMalformed(AuthError):
    code = "token_malformed"


class PartnerUnknown(AuthError):
    code = "partner_unknown"


class TokenAlgorithm(AuthError):
    code = "token_algorithm"


class TokenSignature(AuthError):
    code = "token_signature"


class TokenClaims(AuthError):
    code = "token_claims"


class TokenExpired(AuthError):
    code = "token_expired"


class TokenNotYetValid(AuthError):
    code = "token_not_yet_valid"


class TokenLifetime(AuthError):
    code = "token_lifetime"


class TokenAudience(AuthError):
    code = "token_audience"


class TokenBinding(AuthError):
    code = "token_binding"


class TokenReplayed(AuthError):
    code = "token_replayed"


class AccessError(GatewayError):
    status = 403
    title = "Forbidden"


class PartnerSuspended(AccessError):
    code = "partner_suspended"


class Forbidden(AccessError):
    code = "forbidden"


class RateLimited(GatewayError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ReplayCacheUnavailable(GatewayError):
    code = "replay_cache_unavailable"
    status = 503
    title = "Replay cache unavailable"


class ServiceUnavailable(GatewayError):
    """The node cannot take new work safely (e.g. the audit store cannot write)."""

    code = "storage_unavailable"
    status = 503
    title = "Service unavailable"


class RequestError(GatewayError):
    status = 400
    title = "Bad request"


class BodyTooLarge(RequestError):
    code = "body_too_large"
    status = 413
    title = "Body too large"


class InvalidJson(RequestError):
    code = "invalid_json"


class ValidationFailed(RequestError):
    """Input failed validation; ``fields`` maps each failing field to its reason."""

    code = "validation_failed"

    def __init__(self, detail: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(detail, extra={"fields": fields or {}})
        self.fields = fields or {}


class NotFound(RequestError):
    code = "not_found"
    status = 404
    title = "Not found"


class MethodNotAllowed(RequestError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class Conflict(RequestError):
    code = "conflict"
    status = 409
    title = "Conflict"


class UpstreamError(GatewayError):
    """A partner system failed or answered something we cannot use."""

    code = "upstream_unavailable"
    status = 502
    title = "Upstream unavailable"


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"
    status = 504
    title = "Upstream timeout"


class InternalError(GatewayError):
    code = "internal"
    status = 500
    title = "Internal error"


ALL_ERRORS: tuple[type[GatewayError], ...] = (
    TokenMissing,
    TokenMalformed,
    PartnerUnknown,
    TokenAlgorithm,
    TokenSignature,
    TokenClaims,
    TokenExpired,
    TokenNotYetValid,
    TokenLifetime,
    TokenAudience,
    TokenBinding,
    TokenReplayed,
    PartnerSuspended,
    Forbidden,
    RateLimited,
    ReplayCacheUnavailable,
    ServiceUnavailable,
    BodyTooLarge,
    InvalidJson,
    ValidationFailed,
    NotFound,
    MethodNotAllowed,
    Conflict,
    UpstreamError,
    UpstreamTimeout,
    InternalError,
)
"""Every HTTP-visible error class, for the OpenAPI document and table tests."""


def error_codes() -> dict[str, int]:
    """Every stable code of every loaded ``GatewayError`` subclass, with its HTTP status.

    Concerns define a few codes of their own next to the code that raises them (the
    desk's sign-in errors, the witness's ``history_rewritten``); this walks them all so
    the OpenAPI document and ``docs/errors.md`` can be checked against one list.
    """
    codes: dict[str, int] = {}
    stack: list[type[GatewayError]] = [GatewayError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        codes.setdefault(cls.code, cls.status)
    return codes
