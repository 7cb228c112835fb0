"""The audit log inside a running node: open the store first, close it last.

``setup_audit`` puts the store on ``app[AUDIT]`` before any other resource opens, runs
the checkpointer beside it, pushes each new checkpoint to the native partners for
cosigning (互为见证), and registers the audit and witness routes.
``open_audit_store`` gives commands (``tongban license ...``, ``tongban audit ...``) the
same store outside a running node; the store is safe with several processes.

Witness identity: a node cosigns partners' checkpoints under the name
``tongban/<node id>/witness`` with its log key (Ed25519). A cosignature (signature type
0x04, ``cosignature/v1``) is domain-separated from a checkpoint signature (type 0x01),
so one key serves both without either being mistaken for the other.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.entry import parse_entry
from gateway.audit.events import AuditEvent
from gateway.audit.note import (
    cosigner_verifier_key,
    parse_checkpoint_body,
    parse_note,
    parse_verifier_key,
)
from gateway.audit.store import AuditStore
from gateway.audit.witness import Authorize, CosignatureCollector, WitnessPartner
from gateway.config import NodeConfig
from gateway.encoding import canonical_json, sha256_b64u
from gateway.http.context import AUDIT, CONFIG, READINESS, TOKEN_KEY
from gateway.keys import load_log_key, log_origin
from gateway.tokens import mint_request_token


def witness_name(node_id: str) -> str:
    return f"tongban/{node_id}/witness"


@dataclass(frozen=True)
class WitnessIdentity:
    """What this node needs to witness its partners' logs."""

    store: AuditStore
    name: str
    key: Ed25519PrivateKey
    verifiers: dict[str, str]  # partner log origin -> its checkpoint verifier key


STORE = web.AppKey("audit_store", AuditStore)
CHECKPOINTER = web.AppKey("audit_checkpointer", Checkpointer)
WITNESS = web.AppKey("audit_witness", WitnessIdentity)


@asynccontextmanager
async def open_audit_store(cfg: NodeConfig) -> AsyncIterator[AuditStore]:
    """The node's audit store, opened and head-checked, closed (flushed) on exit."""
    store = AuditStore.from_config(cfg)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def witnessing_partners(cfg: NodeConfig) -> list[WitnessPartner]:
    """Native partners with a known log key cosign our checkpoints; others are skipped."""
    out = []
    for p in cfg.partners:
        if p.adapter == "native" and p.log_vkey and p.enabled:
            pub = parse_verifier_key(p.log_vkey).public_key
            out.append(WitnessPartner(p.id, p.url, cosigner_verifier_key(witness_name(p.id), pub)))
    return out


def _authorizer(app: web.Application) -> Callable[[str], Authorize | None]:
    cfg = app[CONFIG]

    def for_partner(partner_id: str) -> Authorize | None:
        def authorize(method: str, path_qs: str, body: bytes) -> str:
            token = mint_request_token(
                app[TOKEN_KEY],
                iss=cfg.id,
                aud=partner_id,
                method=method,
                path_qs=path_qs,
                body=body,
            )
            return f"Bearer {token}"

        return authorize

    return for_partner


class WitnessPush:
    """Pushes new checkpoints to the witnesses, but not ones that only add witnessing.

    Cosigning is itself a served request and so an entry in the witness's log; if every
    checkpoint were pushed, two nodes would ping-pong one entry a second forever. A
    checkpoint whose only new entries record cosigning waits for the next real entry.
    """

    def __init__(self, store: AuditStore, collector: CosignatureCollector) -> None:
        self.store = store
        self.collector = collector
        self.pushed = 0

    async def __call__(self, note: bytes) -> None:
        size = parse_checkpoint_body(parse_note(note).body).size
        if self.pushed and size - self.pushed <= WITNESS_ONLY_SCAN:
            events = [
                parse_entry(data).event
                async for _, data in self.store.iter_entries(self.pushed, size)
            ]
            if all(e == "witness.cosign" for e in events):
                return
        self.pushed = size
        await self.collector(note)


#: How many new entries are looked at to tell a witnessing-only checkpoint.
WITNESS_ONLY_SCAN = 64


def config_fingerprint(cfg: NodeConfig, token_kid: str) -> dict[str, object]:
    """What a configuration or key change alters: file digests and registered keys.

    Only digests and key ids: nothing personal, nothing secret.
    """
    return {
        "config": sha256_b64u(cfg.source.read_bytes()),
        "catalog": sha256_b64u(cfg.catalog_path.read_bytes()),
        "token_kid": token_kid,
        "log_vkey": sha256_b64u((cfg.node_certs / "log.vkey").read_bytes()),
        "partners": {p.id: sorted(k.kid for k in p.keys) for p in cfg.partners},
    }


async def record_config_change(cfg: NodeConfig, store: AuditStore, token_kid: str) -> None:
    """Append ``config.change`` when the node starts with other files or keys than before.

    The last fingerprint is kept beside the log; comparing at start catches every edit
    made while the node was down, which is when configuration changes are made.
    """
    fingerprint = config_fingerprint(cfg, token_kid)
    marker = store.dir / "config.fingerprint"
    encoded = canonical_json(fingerprint)
    if marker.is_file() and marker.read_bytes() == encoded:
        return
    previous = json.loads(marker.read_bytes()) if marker.is_file() else None
    changed = sorted(
        k for k in fingerprint if previous is None or previous.get(k) != fingerprint[k]
    )
    await store.append(
        AuditEvent(
            event="config.change",
            actor_type="system",
            actor_id=cfg.id,
            meta={"changed": changed, **fingerprint},
        )
    )
    tmp = marker.with_suffix(".tmp")
    tmp.write_bytes(encoded)
    tmp.replace(marker)


async def _audit_ctx(app: web.Application) -> AsyncIterator[None]:
    cfg = app[CONFIG]
    key = load_log_key(cfg)
    async with open_audit_store(cfg) as store, aiohttp.ClientSession() as session:
        app[STORE] = store
        app[AUDIT] = store
        await record_config_change(cfg, store, app[TOKEN_KEY].kid)
        app[READINESS]["audit_database"] = store.ping
        app[WITNESS] = WitnessIdentity(
            store=store,
            name=witness_name(cfg.id),
            key=key,
            verifiers={
                log_origin(p.id): p.log_vkey
                for p in cfg.partners
                if p.adapter == "native" and p.log_vkey
            },
        )
        partners = witnessing_partners(cfg)
        hook = (
            WitnessPush(
                store, CosignatureCollector(store, session, partners, authorize=_authorizer(app))
            )
            if partners
            else None
        )
        checkpointer = Checkpointer(store, key, on_checkpoint=hook)
        app[CHECKPOINTER] = checkpointer
        async with checkpointer:
            yield


def setup_audit(app: web.Application) -> None:
    """Register the audit log's lifecycle (first in, last out) and its routes."""
    from gateway.http import audit_api

    app.cleanup_ctx.append(_audit_ctx)
    app.router.add_routes(audit_api.routes)
