"""Errors only the hall desk raises, with stable codes like those of ``gateway.errors``.

    AuthError                 401
    ├── SignInFailed              sign_in_failed   wrong user name or password (never says which)
    └── SessionRequired           session_required no desk session, or it expired / was ended
    RateLimited               429
    └── SignInLocked              sign_in_locked   too many failed sign-ins (Retry-After set)

Wrong CSRF tokens and pages of another role are ``gateway.errors.Forbidden`` (403
``forbidden``), as the SPEC's access errors are.
"""

from __future__ import annotations

from gateway.errors import AuthError, RateLimited

SIGN_IN_FAILED_DETAIL = "wrong user name or password"
LOCKED_DETAIL = "too many failed sign-ins; try again later"


class SignInFailed(AuthError):
    """The user name or the password is wrong; the detail never says which."""

    code = "sign_in_failed"
    title = "Sign-in failed"

    def __init__(self) -> None:
        super().__init__(SIGN_IN_FAILED_DETAIL)


class SignInLocked(RateLimited):
    """Sign-in is locked for this account or this client address for a while.

    The detail is the same whether or not the account exists, so a lockout does not
    reveal which user names are real.
    """

    code = "sign_in_locked"
    title = "Sign-in locked"

    def __init__(self, retry_after: int) -> None:
        super().__init__(LOCKED_DETAIL, retry_after=max(1, retry_after))


class SessionRequired(AuthError):
    code = "session_required"
    title = "Sign-in required"


DESK_ERRORS = (SignInFailed, SignInLocked, SessionRequired)
