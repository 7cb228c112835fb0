"""The desk's way into the license verifier: one call, the verdict and its audit entry.

``gateway.licenses.service.verify_license_request`` runs the same engine as the partner
API and the CLI, with staff as the actor (``actor.sub`` the staff id), and makes the
``license.verify`` entry durable before returning. A request the engine refuses
outright (say, a malformed 亮证码) is recorded here as a rejected ``license.verify``,
since SPEC 6 wants every rejection in the log too.
"""

from __future__ import annotations

from aiohttp import web

from gateway.audit.events import AuditReceipt
from gateway.desk.inputs import DeskInput
from gateway.desk.journal import record
from gateway.errors import GatewayError
from gateway.http.context import CONFIG
from gateway.licenses.service import Actor, VerifyRequest, verify_license_request
from gateway.licenses.verdict import Verdict


async def verify_at_desk(
    app: web.Application, given: DeskInput, purpose: str, *, staff: str, body: bytes
) -> tuple[Verdict, AuditReceipt]:
    """Verify a scanned QR or a license for ``purpose`` on behalf of ``staff``."""
    request = VerifyRequest(
        license=given.value if given.kind == "license" else None,
        qr=given.value if given.kind == "qr" else None,
        purpose=purpose,
    )
    try:
        return await verify_license_request(
            app, request, actor=Actor(type="staff", id=app[CONFIG].id, sub=staff)
        )
    except GatewayError as exc:
        await record(
            app,
            "license.verify",
            staff=staff,
            outcome="rejected" if exc.status < 500 else "error",
            code=exc.code,
            request=body,
            meta={"purpose": purpose, "source": given.kind},
        )
        raise
