"""Schemathesis against a live node's OpenAPI document: no 5xx, every answer as documented.

The node runs as its own process; the cases are generated from the document it
serves at ``/openapi.json`` (loaded lazily from a fixture, so adapter routes that a
running node adds are covered too). Every generated call is signed as Quzhou
(cn-330800), the way a partner system would: the request is prepared first, so the
token binds the exact method, path+query and body bytes that go on the wire.

Bounded: a few dozen examples per operation, no shrinking deadline, well under two
minutes on two cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from gateway.keys import load_token_key
from gateway.tokens import SigningKey, mint_request_token
from tests.hostile.node_process import NodeProcess, node_process
from tests.support.network import Tree, free_port_block, make_tree

pytestmark = pytest.mark.timeout(150)

JIAN, QUZHOU = "cn-360800", "cn-330800"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


class LiveNode:
    def __init__(self, node: NodeProcess, key: SigningKey) -> None:
        self.node = node
        self.key = key
        self.session = requests.Session()


@pytest.fixture(scope="module")
def live(pki_tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    tree = make_tree(tmp_path_factory.mktemp("schemathesis"), pki_from=pki_tree.certs)
    tree.base_port = free_port_block()
    port = tree.config(JIAN).port
    with node_process(tree.config_path(JIAN), port, tree.root / "node.log") as node:
        live = LiveNode(node, load_token_key(tree.config(QUZHOU)))
        yield live
        live.session.close()


#: (method, path template) -> statuses seen, to prove the calls were really signed.
SEEN: dict[tuple[str, str], set[int]] = {}


def signed(case: Any, live: LiveNode) -> tuple[requests.PreparedRequest, dict[str, Any]]:
    """Prepare the case's request, then sign exactly what will be sent."""
    kwargs = case.as_transport_kwargs(base_url=live.node.url)
    kwargs.pop("timeout", None)
    kwargs.pop("allow_redirects", None)
    kwargs.pop("verify", None)
    prepared = requests.Request(**kwargs).prepare()
    raw = prepared.body or b""
    body = raw.encode("utf-8") if isinstance(raw, str) else raw
    assert isinstance(body, bytes)
    token = mint_request_token(
        live.key, iss=QUZHOU, aud=JIAN, method=prepared.method or "GET",
        path_qs=prepared.path_url, body=body,
    )  # fmt: skip
    prepared.headers["Authorization"] = f"Bearer {token}"
    return prepared, kwargs


def operations(live: LiveNode) -> list[Any]:
    """Every operation of the document the live node serves."""
    loaded = schemathesis.openapi.from_url(live.node.url + "/openapi.json")
    found = []
    for result in loaded.get_all_operations():
        assert isinstance(result, Ok), result
        found.append(result.ok())
    return found


def test_every_answer_matches_the_document(live: LiveNode) -> None:
    ops = operations(live)
    assert len(ops) >= 12
    for operation in ops:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case: Any) -> None:
            prepared, kwargs = signed(case, live)
            response = live.session.send(prepared, timeout=30, allow_redirects=False)
            SEEN.setdefault((case.method.upper(), case.path), set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

        call()


def test_generated_calls_were_authenticated(live: LiveNode) -> None:
    """A partner route answering only 401 would mean the signing above is wrong."""
    partner = {op: st for op, st in SEEN.items() if op[1].startswith("/v1/")}
    assert len(partner) >= 7, SEEN
    for op, statuses in partner.items():
        assert statuses - {401}, f"{op} was only ever refused as unauthenticated"
    assert 200 in SEEN[("GET", "/v1/catalog")]
