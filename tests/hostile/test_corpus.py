"""The hostile-request corpus (tests/corpus/hostile.jsonl) against a live node.

One Ji'an node runs as its own process (``python -m gateway serve``), its structlog
output captured. Every corpus request must get its exact SPEC error code; afterwards
the node's audit log is read to prove that no unauthenticated request reached a
handler (handlers name the entry's event; a request refused by the middleware keeps
the route's name), and the captured logs and every answer are searched for the
resident identity numbers and names the corpus carries.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.demo_data import seed_licenses
from gateway.keys import load_token_key
from gateway.licenses.store import LicenseStore, license_db_path
from tests.hostile.corpus_runner import (
    JIAN,
    QUZHOU,
    Answer,
    Keys,
    load_corpus,
    run_case,
)
from tests.hostile.node_process import node_process
from tests.support.network import Tree, free_port_block, make_tree

pytestmark = pytest.mark.timeout(180)

CORPUS = load_corpus()
#: Events that only a handler sets; a refused request is recorded under its route name.
HANDLER_EVENTS = {
    "license.verify",
    "license.fetch",
    "license.status",
    "request.submit",
    "request.read",
    "request.status",
}
PERSONAL = ["11010519491231002X", "110105194912310021", "110105194902310028", "张秀英"]
RESIDENT_ID = re.compile(rb"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")


@dataclass
class CorpusRun:
    answers: dict[str, Answer]
    entries: dict[int, dict[str, Any]]
    log: bytes


def _restrict_items(tree: Tree) -> None:
    """Quzhou may use one service item at Ji'an, so a purpose outside it is ``forbidden``."""
    path = tree.config_path(JIAN)
    text = path.read_text(encoding="utf-8")
    first = text.index('items = ["*"]')
    path.write_text(
        text[:first] + 'items = ["TB-360800-0302"]' + text[first + len('items = ["*"]') :],
        encoding="utf-8",
    )


def _a_license(tree: Tree) -> str:
    cfg = tree.config(JIAN)
    seed_licenses(cfg)
    store = LicenseStore(license_db_path(cfg))
    try:
        return store.list()[0].jws
    finally:
        store.close()


def _read_entries(tree: Tree) -> dict[int, dict[str, Any]]:
    db = tree.config(JIAN).data_dir / "audit" / "audit.sqlite3"
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {
            int(seq): json.loads(bytes(data))
            for seq, data in conn.execute("SELECT seq, bytes FROM entries")
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def corpus_run(pki_tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusRun]:
    tree = make_tree(tmp_path_factory.mktemp("corpus"), pki_from=pki_tree.certs)
    tree.base_port = free_port_block()
    _restrict_items(tree)
    license_jws = _a_license(tree)
    port = tree.config(JIAN).port
    log_file = tree.root / "node.log"
    keys = Keys(quzhou=load_token_key(tree.config(QUZHOU)))

    async def run_all() -> dict[str, Answer]:
        return {c["name"]: await run_case(c, port, keys, license_jws) for c in CORPUS}

    with node_process(tree.config_path(JIAN), port, log_file, level="DEBUG"):
        answers = asyncio.run(run_all())
    yield CorpusRun(answers, _read_entries(tree), log_file.read_bytes())


def _params() -> list[Any]:
    out = []
    for case in CORPUS:
        marks = []
        if case.get("known_bug"):
            marks.append(pytest.mark.xfail(reason=case["known_bug"], strict=True))
        out.append(pytest.param(case, id=case["name"], marks=marks))
    return out


def test_the_corpus_is_large_and_every_name_is_unique() -> None:
    names = [c["name"] for c in CORPUS]
    assert len(names) >= 200
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", _params())
def test_each_hostile_request_gets_its_exact_code(
    case: dict[str, Any], corpus_run: CorpusRun
) -> None:
    answer = corpus_run.answers[case["name"]]
    problem = answer.json()
    assert (answer.status, (problem or {}).get("code")) == (
        case["expect_status"],
        case["expect_code"],
    ), answer.body[:300]
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == f"urn:tongban:error:{case['expect_code']}"
    assert problem["request_id"] == answer.headers["x-request-id"]
    if case["path"].startswith("/v1/"):
        assert answer.headers["tongban-audit"].startswith("seq=")


def _entry_of(run: CorpusRun, answer: Answer) -> dict[str, Any]:
    seq = int(answer.headers["tongban-audit"].split(";")[0].removeprefix("seq="))
    return run.entries[seq]


def test_no_unauthenticated_request_reached_a_handler(corpus_run: CorpusRun) -> None:
    checked = 0
    for case in CORPUS:
        answer = corpus_run.answers[case["name"]]
        if not case["path"].startswith("/v1/") or "tongban-audit" not in answer.headers:
            continue
        entry = _entry_of(corpus_run, answer)
        assert entry["outcome"] in ("rejected", "error"), case["name"]
        if case["expect_status"] == 401 and case["expect_code"] != "token_replayed":
            assert entry["actor"] == {"id": "unauthenticated", "sub": None, "type": "partner"}
            assert entry["event"] not in HANDLER_EVENTS, case["name"]
            checked += 1
    assert checked >= 100
    for entry in corpus_run.entries.values():
        if entry["actor"]["id"] == "unauthenticated":
            assert entry["outcome"] != "ok" and entry["event"] not in HANDLER_EVENTS


def test_no_personal_data_in_logs_or_answers(corpus_run: CorpusRun) -> None:
    assert b'"request"' in corpus_run.log  # the canonical line per request was captured
    for text in PERSONAL:
        assert text.encode() not in corpus_run.log
    assert not RESIDENT_ID.findall(corpus_run.log)
    for name, answer in corpus_run.answers.items():
        for text in PERSONAL:
            assert text.encode() not in answer.body, name
    for entry in corpus_run.entries.values():
        flat = json.dumps(entry, ensure_ascii=False)
        assert not any(text in flat for text in PERSONAL)
