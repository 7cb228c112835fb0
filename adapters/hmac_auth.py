"""Shared-secret authentication for partners that have no request-token keys.

Legacy partners authenticate with HMAC-SHA256 under the secret in
``certs/<partner id>/hmac.key`` (``hmac_key_file`` in the partner entry). Each style
decides *what* it signs; this module holds the two checks every style makes, and they
raise the request-token errors of SPEC 2 so a refused callback answers with a code an
operator already knows:

* ``verify_mac`` — constant-time comparison; a wrong or undecodable MAC is
  ``token_signature``;
* ``verify_fresh`` — the signed send time is within five minutes of our clock:
  older is ``token_expired``, later is ``token_not_yet_valid``.

Adapters reading a *reply* turn these into ``UpstreamError``.
"""

from __future__ import annotations

import hashlib
import hmac

from gateway.config import NodeConfig, PartnerConfig
from gateway.errors import ConfigError, TokenExpired, TokenNotYetValid, TokenSignature

#: How far a signed send time may be from our clock, either way (seconds).
FRESHNESS_SECONDS = 300.0


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def verify_mac(key: bytes, message: bytes, given: bytes) -> None:
    """Raise ``TokenSignature`` unless ``given`` is the HMAC-SHA256 of ``message``."""
    if not hmac.compare_digest(hmac_sha256(key, message), given):
        raise TokenSignature("the HMAC signature does not verify")


def verify_fresh(sent_at: float, now: float, window: float = FRESHNESS_SECONDS) -> None:
    """Raise unless ``sent_at`` (epoch seconds) is within ``window`` of ``now``."""
    if sent_at < now - window:
        raise TokenExpired(f"the signed time is more than {int(window)} s old")
    if sent_at > now + window:
        raise TokenNotYetValid(f"the signed time is more than {int(window)} s ahead")


def require_hmac_key(node: NodeConfig, partner: PartnerConfig) -> bytes:
    """The partner's shared secret, or a ``ConfigError`` naming the missing key."""
    if partner.hmac_key is None:
        raise ConfigError(
            str(node.source), f"partners.{partner.id}.hmac_key_file", f"{partner.adapter} needs it"
        )
    return partner.hmac_key
