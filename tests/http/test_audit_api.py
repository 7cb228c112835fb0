"""The audit log over HTTP: checkpoints cosigned by partners, proofs, entry access."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp

from gateway.audit.merkle import EMPTY_ROOT, leaf_hash, verify_inclusion
from gateway.audit.note import (
    Checkpoint,
    format_add_checkpoint,
    parse_checkpoint_body,
    parse_note,
    sign_note,
)
from gateway.audit.service import STORE
from gateway.keys import load_log_key, load_token_key, log_origin
from gateway.tokens import mint_request_token
from tests.support.network import Network, Tree

JIAN, QUZHOU = "cn-360800", "cn-330800"


async def call(
    tree: Tree, as_node: str, to: str, method: str, path: str, body: bytes = b""
) -> tuple[int, bytes, dict[str, str]]:
    token = mint_request_token(
        load_token_key(tree.config(as_node)),
        iss=as_node,
        aud=to,
        method=method,
        path_qs=path,
        body=body,
    )
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method,
            tree.url(to) + path,
            data=body or None,
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        return resp.status, await resp.read(), dict(resp.headers)


async def latest_checkpoint(tree: Tree, node: str, *, min_size: int, cosigned: bool) -> bytes:
    async with aiohttp.ClientSession() as s:
        for _ in range(100):  # bounded: checkpoints come at least every second
            async with s.get(tree.url(node) + "/v1/audit/checkpoint") as resp:
                if resp.status == 200:
                    text = await resp.read()
                    note = parse_note(text)
                    size = parse_checkpoint_body(note.body).size
                    names = {sig.name for sig in note.signatures}
                    if size >= min_size and (not cosigned or len(names) >= 2):
                        return text
            await asyncio.sleep(0.1)
    raise AssertionError(f"no checkpoint of size >= {min_size} at {node}")


async def test_partners_cosign_and_proofs_verify(tree: Tree, network: Network) -> None:
    await network.start(QUZHOU)
    await network.start(JIAN)
    receipts = []
    for _ in range(3):
        status, _, headers = await call(tree, QUZHOU, JIAN, "GET", "/v1/catalog")
        assert status == 200
        receipts.append(headers["Tongban-Audit"])
    text = await latest_checkpoint(tree, JIAN, min_size=3, cosigned=True)
    note = parse_note(text)
    assert {s.name for s in note.signatures} == {log_origin(JIAN), "tongban/cn-330800/witness"}
    cp = parse_checkpoint_body(note.body)

    seq = int(receipts[1].split(";")[0].removeprefix("seq="))
    status, body, _ = await call(tree, QUZHOU, JIAN, "GET", f"/v1/audit/entries/{seq}")
    assert status == 200
    assert json.loads(body)["actor"]["id"] == QUZHOU
    leaf_b64u = receipts[1].split("leaf=")[1]
    assert leaf_hash(body) == base64.urlsafe_b64decode(leaf_b64u + "=")

    status, proof_body, _ = await call(
        tree, QUZHOU, JIAN, "GET", f"/v1/audit/proof/inclusion?index={seq}&size={cp.size}"
    )
    assert status == 200
    proof = [base64.b64decode(h) for h in json.loads(proof_body)["hashes"]]
    verify_inclusion(leaf_hash(body), seq, cp.size, proof, cp.root)


async def test_entry_access_and_bad_parameters(tree: Tree, network: Network) -> None:
    await network.start(QUZHOU)
    await network.start(JIAN)
    _, _, headers = await call(tree, QUZHOU, JIAN, "GET", "/v1/catalog")
    own = int(headers["Tongban-Audit"].split(";")[0].removeprefix("seq="))
    status, body, _ = await call(tree, QUZHOU, JIAN, "GET", f"/v1/audit/entries/{own}")
    assert status == 200
    assert json.loads(body)["actor"]["id"] == QUZHOU
    # An entry recording another actor (here an unauthenticated caller) is refused.
    async with aiohttp.ClientSession() as s, s.get(tree.url(JIAN) + "/v1/catalog") as r:
        assert r.status == 401
        other = int(r.headers["Tongban-Audit"].split(";")[0].removeprefix("seq="))
    status, body, _ = await call(tree, QUZHOU, JIAN, "GET", f"/v1/audit/entries/{other}")
    assert (status, json.loads(body)["code"]) == (403, "forbidden")
    for path, code in [
        ("/v1/audit/entries/999", "not_found"),
        ("/v1/audit/entries/x1", "validation_failed"),
        ("/v1/audit/proof/inclusion?index=5&size=2", "validation_failed"),
        ("/v1/audit/proof/inclusion?index=0", "validation_failed"),
        ("/v1/audit/proof/inclusion?index=0&size=99999", "validation_failed"),
        ("/v1/audit/proof/consistency?old=3&new=2", "validation_failed"),
    ]:
        status, body, _ = await call(tree, QUZHOU, JIAN, "GET", path)
        assert json.loads(body)["code"] == code, path


async def test_a_node_that_rewrites_history_is_refused(tree: Tree, network: Network) -> None:
    await network.start(QUZHOU)
    await network.start(JIAN)
    for _ in range(3):
        await call(tree, QUZHOU, JIAN, "GET", "/v1/catalog")
    real = parse_checkpoint_body(
        parse_note(await latest_checkpoint(tree, JIAN, min_size=3, cosigned=True)).body
    )
    # Ji'an's key signs a checkpoint of the same size with another root: a fork.
    forged = Checkpoint(log_origin(JIAN), real.size, bytes(32)).body()
    note = sign_note(forged, log_origin(JIAN), load_log_key(tree.config(JIAN)))
    body = format_add_checkpoint(real.size, [], note)
    status, answer, headers = await call(
        tree, JIAN, QUZHOU, "POST", "/v1/witness/add-checkpoint", body
    )
    assert status == 409
    assert headers["Content-Type"].startswith("text/x.tlog.size")
    assert answer == f"{real.size}\n".encode()
    assert headers["Tongban-Audit"].startswith("seq=")
    # A checkpoint that does not extend what Quzhou cosigned (proof from the empty tree).
    grown = Checkpoint(log_origin(JIAN), real.size + 5, bytes(32)).body()
    note = sign_note(grown, log_origin(JIAN), load_log_key(tree.config(JIAN)))
    body = format_add_checkpoint(real.size, [EMPTY_ROOT], note)
    status, answer, _ = await call(tree, JIAN, QUZHOU, "POST", "/v1/witness/add-checkpoint", body)
    assert (status, json.loads(answer)["code"]) == (422, "history_rewritten")


async def test_witnessing_does_not_ping_pong_forever(tree: Tree, network: Network) -> None:
    await network.start(QUZHOU)
    await network.start(JIAN)
    await call(tree, QUZHOU, JIAN, "GET", "/v1/catalog")
    await latest_checkpoint(tree, JIAN, min_size=1, cosigned=True)
    stores = [network.runners[n].app[STORE] for n in (JIAN, QUZHOU)]
    await asyncio.sleep(3)  # several checkpoint periods, with no HTTP traffic of ours
    sizes = [s.size for s in stores]
    await asyncio.sleep(3)
    assert [s.size for s in stores] == sizes
