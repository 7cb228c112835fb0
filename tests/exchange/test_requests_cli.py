"""``tongban requests``: submit, list, show and retry on a node's stores, node not running."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.main import main
from tests.exchange.harness import Exchange
from tests.exchange.support import (
    APPLICANT_ID,
    APPLICANT_NAME,
    JIAN,
    QUZHOU,
    QUZHOU_ITEM,
    Clock,
    json_document,
    new_request_id,
    submission,
)
from tests.support.network import Tree


def run(tree: Tree, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main([*args, "--config", str(tree.config_path(JIAN))])
    out, err = capsys.readouterr()
    return code, (json_document(out) if "--json" in args and out else out), err


def request_file(tmp_path: Path, **over: Any) -> Path:
    body = submission(**over)
    body.pop("item_code")
    body.pop("submitted_at")
    if "request_id" not in over:
        body.pop("request_id")
    path = tmp_path / "req.json"
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return path


def submit(tree: Tree, capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> Any:
    code, out, err = run(
        tree, capsys, "requests", "submit", "--item", QUZHOU_ITEM, "--file", str(path),
        "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    return out


def test_submit_fills_in_the_id_and_queues_the_delivery(
    tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = submit(tree, capsys, request_file(tmp_path))
    assert len(out["request_id"]) == 36
    assert (out["status"], out["handling_node"], out["created"]) == ("received", QUZHOU, True)
    assert out["delivery"]["state"] == "pending"
    assert out["due_at"] is not None


def test_submitting_a_file_twice_is_one_request_and_changing_it_is_a_conflict(
    tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "req.json"
    body = submission()
    del body["item_code"]
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    first, again = submit(tree, capsys, path), submit(tree, capsys, path)
    assert (first["created"], again["created"]) == (True, False)
    assert again["request_id"] == first["request_id"] == body["request_id"]
    path.write_text(json.dumps(body | {"form": {"reason": "changed"}}), encoding="utf-8")
    code, _, err = run(
        tree, capsys, "requests", "submit", "--item", QUZHOU_ITEM, "--file", str(path)
    )
    assert code == 1
    assert err.startswith("tongban: conflict: this request_id was already used")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"applicant": {"name": "x", "id_type": "111", "id": "123"}}, "applicant.id: must be 18"),
        ({"licenses": ["1.2.3"]}, "licenses[0]: must start with"),
        ({"item_code": "TB-150500-0106"}, "names item 'TB-150500-0106' but --item"),
    ],
)
def test_submit_refuses_bad_requests_in_one_line(
    tree: Tree,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    body: dict[str, Any],
    message: str,
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(submission() | body), encoding="utf-8")
    code, _, err = run(
        tree, capsys, "requests", "submit", "--item", QUZHOU_ITEM, "--file", str(path)
    )
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    assert APPLICANT_ID not in err


def test_submit_refuses_an_item_this_node_handles_itself(
    tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = request_file(tmp_path, licenses=[])
    code, _, err = run(
        tree, capsys, "requests", "submit", "--item", "TB-360800-0101", "--file", str(path)
    )
    assert code == 2
    assert "handled by this node" in err


@pytest.mark.parametrize("content", [b"{not json", b"[]", b"\xff"])
def test_submit_refuses_files_that_are_not_a_json_object(
    tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, _, err = run(
        tree, capsys, "requests", "submit", "--item", QUZHOU_ITEM, "--file", str(path)
    )
    assert code == 2 and "bad.json" in err


def test_submit_wait_gives_up_in_time_but_keeps_the_request(
    tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(
        tree, capsys, "requests", "submit", "--item", QUZHOU_ITEM,
        "--file", str(request_file(tmp_path)), "--wait", "0.3", "--json",
    )  # fmt: skip
    assert code == 1
    assert "not delivered within 0.3 s" in err
    assert out["delivery"]["state"] == "pending"


def test_list_and_show(tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, empty, _ = run(tree, capsys, "requests", "list", "--json")
    assert code == 0 and empty["requests"] == []
    rid = submit(tree, capsys, request_file(tmp_path))["request_id"]
    code, listing, _ = run(tree, capsys, "requests", "list", "--json")
    assert [r["request_id"] for r in listing["requests"]] == [rid]
    assert listing["requests"][0]["role"] == "accepting"
    assert listing["partners"] == [
        {
            "partner": QUZHOU,
            "circuit": "closed",
            "failures": 0,
            "pending": 1,
            "refused": 0,
            "delivered": 0,
            "oldest_pending_at": listing["partners"][0]["oldest_pending_at"],
        }
    ]
    code, shown, _ = run(tree, capsys, "requests", "show", rid, "--json")
    assert code == 0
    assert shown["applicant"]["name"] == APPLICANT_NAME[0] + "**"
    assert shown["applicant"]["id"] == APPLICANT_ID[:4] + "*" * 10 + APPLICANT_ID[-4:]
    assert [d["kind"] for d in shown["deliveries"]] == ["submit"]
    code, text, _ = run(tree, capsys, "requests", "show", rid)
    assert code == 0 and APPLICANT_ID not in text and APPLICANT_NAME not in text
    code, text, _ = run(tree, capsys, "requests", "list")
    assert code == 0 and rid in text and "circuit closed" in text


def test_show_unknown_and_malformed_ids(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(tree, capsys, "requests", "show", new_request_id())
    assert code == 1 and "has no request" in err
    code, _, err = run(tree, capsys, "requests", "show", "nope")
    assert code == 2 and "not a request id" in err


def test_retry_resets_the_backoff_and_lets_the_breaker_probe(
    tree: Tree, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rid = submit(tree, capsys, request_file(tmp_path))["request_id"]

    async def fail_a_few_times() -> None:  # Quzhou is down: the worker's attempts fail
        ex = Exchange.for_node(tree.config(JIAN), Clock(1e10))
        await ex.open()
        try:
            for _ in range(3):
                ex.clock.advance(400)
                await ex.run()
        finally:
            await ex.close()

    asyncio.run(fail_a_few_times())
    code, shown, _ = run(tree, capsys, "requests", "show", rid, "--json")
    [delivery] = shown["deliveries"]
    assert delivery["attempts"] == 3 and delivery["next_attempt_at"] > "2286"
    code, listing, _ = run(tree, capsys, "requests", "list", "--json")
    assert listing["partners"][0]["circuit"] == "open"
    code, out, _ = run(tree, capsys, "requests", "retry", rid, "--json")
    assert (code, out["rescheduled"], out["partner"]) == (0, 1, QUZHOU)
    code, shown, _ = run(tree, capsys, "requests", "show", rid, "--json")
    assert shown["deliveries"][0]["next_attempt_at"] < "2286"
    code, out, _ = run(tree, capsys, "requests", "retry", new_request_id(), "--json")
    assert code == 1
