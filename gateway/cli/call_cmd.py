"""``tongban call``: send one signed partner call as a node and show the full answer."""

from __future__ import annotations

import argparse
import asyncio
import json
from urllib.parse import urlsplit

from gateway.cli.common import add_json_option, add_node_options, fail, node_config, print_json
from gateway.config import NodeConfig
from gateway.http.client import PartnerClient, PartnerResponse
from gateway.keys import load_token_key


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    call = sub.add_parser(
        "call",
        help="send a signed partner call as a node (its token key)",
        description="Example: tongban call --node cn-330800 GET http://127.0.0.1:8080/v1/catalog",
    )
    add_node_options(call)
    call.add_argument("method", help="GET, POST, ...")
    call.add_argument("url", help="full URL of a partner node's endpoint")
    call.add_argument("--data", help="JSON body (a string, or @FILE to read it from a file)")
    call.add_argument("--aud", help="the receiving node id (default: found from the URL)")
    call.add_argument("--sub", help="the system or staff member inside the calling node")
    call.add_argument("--pur", help="purpose (用证事由)")
    add_json_option(call)
    call.set_defaults(func=run_call)


def audience_for(cfg: NodeConfig, url: str) -> str:
    origin = urlsplit(url)
    for p in cfg.partners:
        purl = urlsplit(p.url)
        if (purl.hostname, purl.port) == (origin.hostname, origin.port):
            return p.id
    fail(f"{url} is not the URL of a partner of {cfg.id}; name the receiver with --aud")


def read_data(value: str | None) -> bytes | None:
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            fail(f"cannot read {value[1:]}: {exc.strerror}")
    try:
        json.loads(text)
    except ValueError:
        fail("--data is not valid JSON")
    return text.encode()


async def send(cfg: NodeConfig, args: argparse.Namespace, body: bytes | None) -> PartnerResponse:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"{args.url} is not an http(s) URL")
    path_qs = parts.path + (f"?{parts.query}" if parts.query else "")
    client = PartnerClient(
        node_id=cfg.id,
        partner_id=args.aud or audience_for(cfg, args.url),
        base_url=f"{parts.scheme}://{parts.netloc}",
        key=load_token_key(cfg),
    )
    try:
        return await client.call(args.method, path_qs, body=body, sub=args.sub, pur=args.pur)
    finally:
        await client.close()


def run_call(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    resp = asyncio.run(send(cfg, args, read_data(args.data)))
    try:
        body: object = json.loads(resp.body)
    except ValueError:
        body = resp.body.decode("utf-8", "replace")
    if args.json:
        print_json({"status": resp.status, "headers": dict(resp.headers), "body": body})
    else:
        print(f"HTTP {resp.status}")
        for name, value in resp.headers.items():
            print(f"{name}: {value}")
        print()
        print(json.dumps(body, ensure_ascii=False, indent=2) if not isinstance(body, str) else body)
    return 0 if resp.status < 400 else 1
