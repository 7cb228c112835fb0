"""``tongban license``: issue, list, revoke, mint 亮证码 and verify e-licenses (SPEC 4, 8).

Every command works on the node's own stores (its license register, replay cache and
audit log), which are safe to share with the running node, and records what it did in
the node's audit log itself. ``verify`` runs the same ``LicenseService`` as the node:
calls to partner cities go over HTTP to the running partner nodes.

    tongban license list --node cn-330800
    tongban license issue --node cn-330800 --file doc.json --json
    tongban license qr --node cn-330800 <identifier> --png qr.png
    tongban license verify "TB1:..." --node cn-360800
    tongban license revoke --node cn-330800 <identifier> --reason "企业注销"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gateway.audit.events import AuditEvent, AuditLog
from gateway.cli.common import add_json_option, add_node_options, fail, node_config, print_json
from gateway.config import NodeConfig
from gateway.encoding import canonical_json
from gateway.errors import ValidationFailed
from gateway.exchange.catalog import load_catalog
from gateway.keys import load_issuer, load_token_key
from gateway.licenses.checks import CHINA_TZ
from gateway.licenses.document import ID_TYPE_RESIDENT, LicenseDocument
from gateway.licenses.identifiers import parse_license_identifier
from gateway.licenses.issuing import change_status, issue_license, mint_license_qr
from gateway.licenses.license_jws import parse_license_jws
from gateway.licenses.policy import PurposePolicy
from gateway.licenses.qr import (
    DEFAULT_QR_LIFETIME,
    MAX_QR_LIFETIME,
    QR_PREFIX,
    parse_qr,
    qr_version,
    write_qr_png,
)
from gateway.licenses.service import (
    Actor,
    VerifyRequest,
    open_license_service,
    read_verify_request,
    verification_audit_event,
)
from gateway.licenses.status import StatusValue
from gateway.licenses.store import LicenseStore, StoredLicense, license_db_path
from gateway.licenses.verdict import Verdict
from gateway.privacy import mask_field, mask_id, mask_name

MAX_FILE_BYTES = 1 << 20
_STATUS_OF = {"revoke": "revoked", "suspend": "suspended", "reinstate": "valid"}
_VERDICT_ZH = {"valid": "有效", "invalid": "无效", "undetermined": "无法确定"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser(
        "license",
        help="e-licenses (电子证照): issue, list, QR codes, status, verify",
        description="E-licenses at a node: the ones its city issued, and verification.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the licenses this node's city issued")
    add_node_options(listing)
    add_json_option(listing)
    listing.set_defaults(func=run_list)

    issue = actions.add_parser(
        "issue",
        help="sign and record a new license",
        description="The node makes the identifier, issuer, type name and area code; the "
        "document (--file, JSON) or the flags give the rest. Flags override the file.",
    )
    add_node_options(issue)
    issue.add_argument("--file", type=Path, help="the license document (JSON object)")
    issue.add_argument("--type", dest="type_code", help="license type code (catalog)")
    issue.add_argument("--holder-name")
    issue.add_argument("--holder-id", help="resident identity number or USCC")
    issue.add_argument("--holder-id-type", choices=("111", "001"))
    issue.add_argument("--number", help="the license number printed on it")
    issue.add_argument("--issued-on", help="YYYY-MM-DD (default today)")
    issue.add_argument("--valid-from", help="YYYY-MM-DD (default the issue date)")
    issue.add_argument("--valid-until", help="YYYY-MM-DD, or 'long-term'")
    issue.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a type-specific field, e.g. disability_level=二级 (repeatable)",
    )
    _add_staff(issue)
    add_json_option(issue)
    issue.set_defaults(func=run_issue)

    qr = actions.add_parser(
        "qr",
        help="mint a 亮证码 (QR code) for a license this node issued",
        description="Prints TB1:... (single use, short-lived). --fields takes field names "
        "or groups (holder, data, *); the default consents to every disclosable field.",
    )
    add_node_options(qr)
    qr.add_argument("identifier")
    qr.add_argument("--fields", help="consented fields, comma-separated (default: all)")
    qr.add_argument(
        "--lifetime",
        type=int,
        default=DEFAULT_QR_LIFETIME,
        help=f"seconds, at most {MAX_QR_LIFETIME} (default {DEFAULT_QR_LIFETIME})",
    )
    qr.add_argument("--png", type=Path, help="also write the QR code as a PNG file")
    _add_staff(qr)
    add_json_option(qr)
    qr.set_defaults(func=run_qr)

    for action, verb in (("revoke", "revoke"), ("suspend", "suspend"), ("reinstate", "reinstate")):
        change = actions.add_parser(action, help=f"{verb} a license this node issued")
        add_node_options(change)
        change.add_argument("identifier")
        change.add_argument("--reason", required=True, help="why (shown to verifiers)")
        _add_staff(change)
        add_json_option(change)
        change.set_defaults(func=run_change, status=_STATUS_OF[action])

    verify = actions.add_parser(
        "verify",
        help="verify a license file or a 亮证码 at a node",
        description="Exit 0 when valid, 1 when invalid or undetermined.",
    )
    verify.add_argument("source", help="a license file (JWS, or issue --json output) or TB1:...")
    add_node_options(verify)
    verify.add_argument("--holder-id", help="the applicant's id: the license must be theirs")
    verify.add_argument("--purpose", help="service item code (用证事由), e.g. TB-330800-0501")
    _add_staff(verify)
    add_json_option(verify)
    verify.set_defaults(func=run_verify)


def _add_staff(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--staff", default="cli", help="who acts (for the audit log)")


def _actor(cfg: NodeConfig, args: argparse.Namespace) -> Actor:
    return Actor("system", cfg.id, args.staff)


@asynccontextmanager
async def _audit(cfg: NodeConfig) -> AsyncIterator[AuditLog]:
    from gateway.audit.service import open_audit_store  # the node's log, shared safely

    async with open_audit_store(cfg) as log:
        yield log


async def _record(cfg: NodeConfig, event: AuditEvent) -> None:
    async with _audit(cfg) as log:
        await log.append(event)


def _one_line(exc: ValidationFailed) -> str:
    parts = [f"{field}: {reason}" for field, reason in sorted(exc.fields.items())]
    return "; ".join(parts) or exc.detail


def _read_text(path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    if len(raw) > MAX_FILE_BYTES:
        fail(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text")


def _identifier(text: str) -> str:
    try:
        return str(parse_license_identifier(text))
    except ValidationFailed as exc:
        fail(_one_line(exc))


def _today() -> date:
    return datetime.now(CHINA_TZ).date()


# ---------------------------------------------------------------- list


def _holder_shown(document: LicenseDocument) -> tuple[str, str]:
    """People are masked; organisations' names and codes are public registry data."""
    holder = document.holder
    if holder.id_type == ID_TYPE_RESIDENT:
        return mask_name(holder.name), mask_id(holder.id)
    return holder.name, holder.id


def _list_row(stored: StoredLicense) -> dict[str, Any]:
    document = stored.document()
    name, holder_id = _holder_shown(document)
    return {
        "identifier": stored.identifier,
        "type_code": stored.type_code,
        "type_name": document.type_name,
        "holder": name,
        "holder_id": holder_id,
        "status": stored.status.status,
        "since": stored.status.since,
        "valid_from": stored.valid_from,
        "valid_until": stored.valid_until,
        "expired": stored.valid_until is not None and stored.valid_until < _today().isoformat(),
    }


def run_list(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    store = LicenseStore(license_db_path(cfg))
    try:
        rows = [_list_row(s) for s in store.list()]
    finally:
        store.close()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"{cfg.id} has issued no licenses (run `tongban demo` once to seed the demo)")
    for row in rows:
        until = row["valid_until"] or "long-term"
        state = row["status"] + (" (expired)" if row["expired"] else "")
        print(f"{row['identifier']}  {row['type_name']}  {row['holder']}  {state}  to {until}")
    return 0


# ---------------------------------------------------------------- issue


def _draft(args: argparse.Namespace) -> dict[str, Any]:
    draft: dict[str, Any] = {}
    if args.file is not None:
        try:
            loaded = json.loads(_read_text(args.file))
        except ValueError:
            fail(f"{args.file} is not JSON")
        if not isinstance(loaded, dict):
            fail(f"{args.file} must hold a JSON object (the license document)")
        draft = loaded
    for name in ("type_code", "number", "issued_on", "valid_from"):
        value = getattr(args, name)
        if value is not None:
            draft[name] = value
    if args.valid_until is not None:
        draft["valid_until"] = None if args.valid_until == "long-term" else args.valid_until
    holder = dict(draft.get("holder") or {})
    for flag, key in (("holder_name", "name"), ("holder_id", "id"), ("holder_id_type", "id_type")):
        if getattr(args, flag) is not None:
            holder[key] = getattr(args, flag)
    if holder:
        draft["holder"] = holder
    data = dict(draft.get("data") or {})
    for item in args.data:
        field, sep, value = item.partition("=")
        if not sep or not field:
            fail(f"--data {item!r}: expected FIELD=VALUE")
        data[field.removeprefix("data.")] = value
    if data or "data" in draft:
        draft["data"] = data
    if "type_code" not in draft:
        fail("give the license type: --type CODE or type_code in --file")
    return draft


def run_issue(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    draft = _draft(args)
    store = LicenseStore(license_db_path(cfg))
    try:
        signed, document = issue_license(
            store,
            load_issuer(cfg),
            draft,
            cfg=cfg,
            catalog=load_catalog(cfg.catalog_path),
            today=_today(),
        )
    except ValidationFailed as exc:
        fail(_one_line(exc))
    finally:
        store.close()
    asyncio.run(
        _record(
            cfg,
            AuditEvent(
                event="license.issue",
                actor_type="system",
                actor_id=cfg.id,
                actor_sub=args.staff,
                subject=signed.identifier,
                payload=parse_license_jws(signed.jws).payload,
                meta={"type_code": document.type_code, "digest": signed.digest},
            ),
        )
    )
    if args.json:
        print_json({"identifier": signed.identifier, "license": signed.jws})
    else:
        print(f"issued {signed.identifier} ({document.type_name})")
        print(signed.jws)
    return 0


# ---------------------------------------------------------------- qr


def run_qr(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    store = LicenseStore(license_db_path(cfg))
    try:
        stored = store.get(_identifier(args.identifier))
    finally:
        store.close()
    try:
        text = mint_license_qr(
            stored,
            load_token_key(cfg),
            node_id=cfg.id,
            policy=PurposePolicy(load_catalog(cfg.catalog_path)),
            fields=fields,
            lifetime=args.lifetime,
        )
    except ValidationFailed as exc:
        fail(_one_line(exc))
    token = parse_qr(text)
    if args.png is not None:
        try:
            write_qr_png(text, args.png)
        except OSError as exc:
            fail(f"cannot write {args.png}: {exc.strerror}")
    asyncio.run(
        _record(
            cfg,
            AuditEvent(
                event="license.qr",
                actor_type="system",
                actor_id=cfg.id,
                actor_sub=args.staff,
                subject=token.lid,
                meta={"fields": list(token.sco), "exp": token.exp, "jti": token.jti},
            ),
        )
    )
    if args.json:
        print_json(
            {
                "qr": text,
                "identifier": token.lid,
                "fields": list(token.sco),
                "expires_at": datetime.fromtimestamp(token.exp, UTC).isoformat(),
                "version": qr_version(text),
                "png": str(args.png) if args.png else None,
            }
        )
    else:
        print(text)
    return 0


# ---------------------------------------------------------------- status changes


def run_change(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    status: StatusValue = args.status
    store = LicenseStore(license_db_path(cfg))
    try:
        before, after = change_status(
            store, _identifier(args.identifier), status, reason=args.reason
        )
    except ValidationFailed as exc:
        fail(_one_line(exc))
    finally:
        store.close()
    event = {
        "revoked": "license.revoke",
        "suspended": "license.suspend",
        "valid": "license.reinstate",
    }
    asyncio.run(
        _record(
            cfg,
            AuditEvent(
                event=event[status],
                actor_type="system",
                actor_id=cfg.id,
                actor_sub=args.staff,
                subject=after.identifier,
                payload=canonical_json({"reason": after.reason}),
                meta={"status": after.status, "previous": before.status, "since": after.since},
            ),
        )
    )
    if args.json:
        print_json(after.to_json())
    else:
        print(f"{after.identifier}: {before.status} -> {after.status} since {after.since}")
    return 0


# ---------------------------------------------------------------- verify


def _verify_request(args: argparse.Namespace) -> tuple[VerifyRequest, bytes]:
    source: str = args.source.strip()
    if source.startswith(QR_PREFIX):
        body: dict[str, Any] = {"qr": source}
    else:
        text = _read_text(Path(source)).strip()
        body = {"license": text}
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except ValueError:
                fail(f"{source} is not JSON")
            if not isinstance(loaded, dict) or not (
                isinstance(loaded.get("license"), str) or isinstance(loaded.get("qr"), str)
            ):
                fail(f"{source} holds JSON without a license or qr member")
            body = {k: loaded[k] for k in ("license", "qr") if k in loaded}
        elif text.startswith(QR_PREFIX):
            body = {"qr": text}
    if args.holder_id:
        body["holder_id"] = args.holder_id
    if args.purpose:
        body["purpose"] = args.purpose
    try:
        return read_verify_request(body), canonical_json(body)
    except ValidationFailed as exc:
        fail(_one_line(exc))


async def _verify(cfg: NodeConfig, request: VerifyRequest, raw: bytes, actor: Actor) -> Verdict:
    async with _audit(cfg) as log, open_license_service(cfg, audit=log) as service:
        verdict = await service.verify(request)
        response = canonical_json(verdict.to_json())
        await log.append(verification_audit_event(verdict, actor, request=raw, response=response))
    return verdict


def _print_verdict(verdict: Verdict) -> None:
    print(f"verdict: {verdict.verdict} ({_VERDICT_ZH[verdict.verdict]})")
    if verdict.identifier:
        print(f"license: {verdict.identifier}")
    for reason in verdict.to_json()["explanations"]:
        print(f"  {reason['code']}: {reason['zh']} / {reason['en']}")
        print(f"    next: {reason['next_zh']} / {reason['next_en']}")
    if len(verdict.license) > 1:
        print("shown fields:")
        for name, value in verdict.license.items():  # masked as at the desk; --json is whole
            print(f"  {name}: {mask_field(name, value)}")
    print("checks:")
    for row in verdict.checks:
        code = f" [{row.code}]" if row.code else ""
        print(f"  {row.result:<7} {row.name:<12}{code} {row.detail}")


def run_verify(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    request, raw = _verify_request(args)
    try:
        verdict = asyncio.run(_verify(cfg, request, raw, _actor(cfg, args)))
    except ValidationFailed as exc:
        fail(_one_line(exc))
    if args.json:
        print_json(verdict.to_json())
    else:
        _print_verdict(verdict)
    sys.stdout.flush()
    return 0 if verdict.verdict == "valid" else 1
