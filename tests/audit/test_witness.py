"""Partner nodes witness each other (C2SP tlog-witness), and refuse rewritten history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.events import AuditEvent
from gateway.audit.export import export
from gateway.audit.note import (
    cosigner_verifier_key,
    format_add_checkpoint,
    parse_checkpoint_body,
    parse_note,
    parse_verifier_key,
    verifier_key,
    verify_cosignature,
)
from gateway.audit.store import AuditStore
from gateway.audit.verify import verify_export
from gateway.audit.witness import (
    ADD_CHECKPOINT_PATH,
    SIZE_CONTENT_TYPE,
    CosignatureCollector,
    ForkedCheckpoint,
    HistoryRewritten,
    WitnessBadRequest,
    WitnessConflict,
    WitnessError,
    WitnessForbidden,
    WitnessPartner,
    WitnessUnknownLog,
    add_checkpoint,
)
from gateway.errors import UpstreamError
from gateway.keys import log_origin

from .conftest import event, fill, make_clock


@dataclass
class Node:
    """One node's audit side: its store, log key and witness key."""

    id: str
    store: AuditStore
    log_key: Ed25519PrivateKey
    witness_key: Ed25519PrivateKey

    @property
    def origin(self) -> str:
        return log_origin(self.id)

    @property
    def vkey(self) -> str:
        return verifier_key(self.origin, self.log_key.public_key())

    @property
    def witness_name(self) -> str:
        return f"tongban/{self.id}/witness"

    @property
    def witness_vkey(self) -> str:
        return cosigner_verifier_key(self.witness_name, self.witness_key.public_key())

    async def sign(self) -> bytes:
        note = await Checkpointer(self.store, self.log_key).checkpoint_now()
        assert note is not None
        return note

    async def witness(self, other: Node, body: bytes) -> bytes:
        return await add_checkpoint(
            self.store, body, {other.origin: other.vkey}, self.witness_name, self.witness_key
        )


async def open_node(root: Path, node_id: str, log_key: Ed25519PrivateKey | None = None) -> Node:
    key = log_key or Ed25519PrivateKey.generate()
    store = AuditStore(
        root / node_id,
        node_id,
        log_vkey=verifier_key(log_origin(node_id), key.public_key()),
        clock=make_clock(),
    )
    await store.open()
    return Node(node_id, store, key, Ed25519PrivateKey.generate())


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    a = await open_node(tmp_path, "cn-360800")
    b = await open_node(tmp_path, "cn-330800")
    try:
        yield a, b
    finally:
        await a.store.close()
        await b.store.close()


def cosigned_by(note: bytes, line: bytes, witness: Node) -> None:
    verify_cosignature(
        parse_note(note).body, line.decode(), parse_verifier_key(witness.witness_vkey)
    )


async def test_two_nodes_cosign_each_other(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    await fill(a.store, 100)
    await fill(b.store, 40)
    note_a = await a.sign()
    line = await b.witness(a, format_add_checkpoint(0, [], note_a))
    cosigned_by(note_a, line, b)
    await a.store.add_cosignatures(100, line)

    await fill(a.store, 200, start=100)
    note_a2 = await a.sign()
    proof = await a.store.consistency_proof(100, 300)
    line2 = await b.witness(a, format_add_checkpoint(100, proof, note_a2))
    cosigned_by(note_a2, line2, b)
    await a.store.add_cosignatures(300, line2)
    assert await b.store.witness_state(a.origin) == (300, a.store.root())

    # The same checkpoint again is cosigned again (idempotent), state unchanged.
    again = await b.witness(a, format_add_checkpoint(300, [], note_a2))
    cosigned_by(note_a2, again, b)

    # And the other way round.
    note_b = await b.sign()
    cosigned_by(note_b, await a.witness(b, format_add_checkpoint(0, [], note_b)), a)
    assert await a.store.witness_state(b.origin) == (40, b.store.root())

    latest = await a.store.latest_checkpoint()
    assert latest is not None and len(parse_note(latest).signatures) == 2
    export(a.store, tmp_path / "export")
    assert verify_export(tmp_path / "export", vkey=a.vkey, witnesses=[b.witness_vkey]).ok


async def test_witness_refusals(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await fill(a.store, 50)
    note = await a.sign()
    await b.witness(a, format_add_checkpoint(0, [], note))
    await fill(a.store, 10, start=50)
    note60 = await a.sign()
    proof = await a.store.consistency_proof(50, 60)

    with pytest.raises(WitnessConflict) as conflict:
        await b.witness(
            a, format_add_checkpoint(20, await a.store.consistency_proof(20, 60), note60)
        )
    assert conflict.value.status == 409 and conflict.value.latest_size == 50

    with pytest.raises(WitnessBadRequest):
        await b.witness(a, format_add_checkpoint(61, [], note60))
    with pytest.raises(WitnessBadRequest):
        await b.witness(a, b"old 50\nnot base64\n\n" + note60)
    with pytest.raises(WitnessUnknownLog):
        await add_checkpoint(
            b.store, format_add_checkpoint(50, proof, note60), {}, b.witness_name, b.witness_key
        )
    other_key = verifier_key(a.origin, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(WitnessForbidden):
        await add_checkpoint(
            b.store,
            format_add_checkpoint(50, proof, note60),
            {a.origin: other_key},
            b.witness_name,
            b.witness_key,
        )
    with pytest.raises(HistoryRewritten) as bad_proof:
        await b.witness(a, format_add_checkpoint(50, [bytes(32)] * len(proof), note60))
    assert bad_proof.value.status == 422
    assert await b.store.witness_state(a.origin) == (50, await a.store.root_at(50))


async def test_rewritten_history_is_refused(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    await fill(a.store, 300)
    note = await a.sign()
    await b.witness(a, format_add_checkpoint(0, [], note))

    # A forged history of the same log, signed with the same key: same origin, other entries.
    fork = await open_node(tmp_path / "fork", a.id, a.log_key)
    try:
        await fill(fork.store, 10)
        await fork.store.append(
            AuditEvent(event="config.change", actor_type="system", actor_id=a.id)
        )
        await fill(fork.store, 389, start=11)
        # Same size, another root: a fork in its plainest form.
        fork300 = await Checkpointer(fork.store, fork.log_key).checkpoint_now(upto=300)
        assert fork300 is not None
        with pytest.raises(ForkedCheckpoint) as forked:
            await b.witness(a, format_add_checkpoint(300, [], fork300))
        assert forked.value.status == 409 and forked.value.latest_size == 300
        assert isinstance(forked.value, HistoryRewritten)
        # A larger checkpoint whose consistency proof cannot lead from what b saw.
        fork400 = await fork.sign()
        proof = await fork.store.consistency_proof(300, 400)
        with pytest.raises(HistoryRewritten) as rewritten:
            await b.witness(a, format_add_checkpoint(300, proof, fork400))
        error = rewritten.value
        assert error.status == 422 and error.origin == a.origin
        assert error.old_size == 300 and error.size == 400
        assert set(error.extra) == {"origin", "old_size", "size", "root"}
    finally:
        await fork.store.close()
    assert await b.store.witness_state(a.origin) == (300, a.store.root())


def witness_app(witness: Node, logs: dict[str, str], seen: list[str]) -> web.Application:
    """A stand-in for the lead's route: the SPEC 7 path, errors as tlog-witness answers."""

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        try:
            lines = await add_checkpoint(
                witness.store, await request.read(), logs, witness.witness_name, witness.witness_key
            )
        except WitnessError as exc:
            if exc.latest_size is not None:
                return web.Response(
                    status=exc.status, text=f"{exc.latest_size}\n", content_type=SIZE_CONTENT_TYPE
                )
            return web.json_response({"code": exc.code}, status=exc.status)
        return web.Response(body=lines, content_type="text/plain")

    app = web.Application()
    app.router.add_post(ADD_CHECKPOINT_PATH, handle)
    return app


async def test_checkpointer_pushes_to_witnesses_over_http(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    seen: list[str] = []
    server = TestServer(witness_app(b, {a.origin: a.vkey}, seen))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            partner = WitnessPartner(b.id, str(server.make_url("/")), b.witness_vkey)
            collector = CosignatureCollector(
                a.store,
                session,
                [partner],
                authorize=lambda pid: lambda m, p, body: f"Bearer {pid}",
            )
            async with Checkpointer(a.store, a.log_key, max_delay=0.05, on_checkpoint=collector):
                await fill(a.store, 700)
            latest = await a.store.latest_checkpoint()
            assert latest is not None and len(parse_note(latest).signatures) == 2
            assert seen and all(h == f"Bearer {b.id}" for h in seen)

            # A collector that forgot the witness's size learns it from the 409 and retries.
            fresh = CosignatureCollector(a.store, session, [partner])
            await a.store.append(event(1))
            note = await Checkpointer(a.store, a.log_key).checkpoint_now()
            assert note is not None
            results = await fresh.push(note)
            assert isinstance(results[b.id], str)
            size = parse_checkpoint_body(parse_note(note).body).size
            assert await b.store.witness_state(a.origin) == (size, a.store.root())

            # A witness that is not ours answers with a key we do not trust: not stored.
            impostor = WitnessPartner(b.id, partner.url, a.witness_vkey)
            await a.store.append(event(2))
            note = await Checkpointer(a.store, a.log_key).checkpoint_now()
            assert note is not None
            results = await CosignatureCollector(a.store, session, [impostor]).push(note)
            assert isinstance(results[b.id], UpstreamError)
            stored = await a.store.latest_checkpoint()
            assert stored is not None and len(parse_note(stored).signatures) == 1
    finally:
        await server.close()


async def test_unreachable_witness_does_not_stop_the_log(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    async with aiohttp.ClientSession() as session:
        dead = WitnessPartner(b.id, "http://127.0.0.1:9", b.witness_vkey)
        collector = CosignatureCollector(a.store, session, [dead], timeout=2)
        async with Checkpointer(a.store, a.log_key, max_delay=0.05, on_checkpoint=collector):
            await fill(a.store, 10)
    assert a.store.latest_checkpoint_size == 10
