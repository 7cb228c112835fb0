"""``tongban audit``: the auditor's toolkit (审计工具) on the command line (SPEC 6, 8).

    tongban audit export --node cn-360800 --out /tmp/jian-audit
    tongban audit verify /tmp/jian-audit --vkey certs/cn-360800/log.vkey
    tongban audit verify --node cn-360800
    tongban audit prove --node cn-360800 7 --out /tmp/receipt.json
    tongban audit verify-receipt /tmp/receipt.json --vkey certs/cn-360800/log.vkey
    tongban audit replay --node cn-360800 --license 1.2.156.3005.2....
    tongban audit replay /tmp/jian-audit --request 5f0c...
    tongban audit erase --node cn-360800 12 --reason holder_request

Commands on a node work on its audit database directly: read-only for ``export``,
``verify`` and ``replay``, through the store (which is safe with several processes) for
``prove`` and ``erase``; so they work whether the node runs or not. Commands on an
export need only the directory and, to mean anything, the log's public key from a
trusted source (``--vkey``): the key inside an export only shows it agrees with itself.

Exit codes: 0 done (or the check passed), 1 the check failed (first bad entry, an
invalid receipt) or the node refused, 2 bad input, each with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gateway.audit.export import (
    CHECKPOINTS_FILE,
    ENTRIES_FILE,
    VKEY_FILE,
    ExportSummary,
    Progress,
    database_path,
    export,
)
from gateway.audit.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    NoteError,
    cosigner_verifier_key,
    parse_checkpoint_body,
    parse_note,
    parse_verifier_key,
)
from gateway.audit.verify import (
    REASONS,
    VerifyReport,
    VerifySetupError,
    verify_database,
    verify_export,
)
from gateway.cli.common import (
    add_json_option,
    add_node_options,
    fail,
    is_terminal,
    node_config,
    print_json,
)
from gateway.config import NodeConfig
from gateway.encoding import b64u_encode
from gateway.errors import NotFound

if TYPE_CHECKING:
    # Receipts and replay load only for the commands that use them (start-up of the
    # other audit commands, ``verify`` above all, is what an auditor waits for).
    from gateway.audit.replay import EventCounts, Step

MAX_KEY_BYTES: Final = 4096
"""A verifier key is one short line; anything longer is not one."""
MAX_RECEIPT_BYTES: Final = 1 << 20
"""A receipt is a few kilobytes (an entry, at most 64 proof hashes, a checkpoint with at
most 100 signatures); a megabyte leaves room and bounds what we parse."""
ERASE_REASON: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
"""An erasure reason is a code, never free text: free text could carry personal data
into the log (the store checks the same form again)."""
_LOG_ORIGIN: Final = re.compile(r"tongban/(cn-[0-9]{6})/audit")
STAFF_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""An account id (``staff01``), not a person's name: it is written into the log."""
MAX_REQUEST_ID: Final = 200
PROVE_POLL_SECONDS: Final = 0.2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser(
        "audit",
        help="export, verify, prove, replay and erase in a node's audit log",
        description="The auditor's toolkit for the audit log of SPEC 6. See docs/audit.md.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    exp = actions.add_parser(
        "export",
        help="write the export directory (entries.jsonl, checkpoints, log.vkey)",
        description="Write a consistent snapshot of the node's audit log for offline "
        "verification; safe while the node runs.",
    )
    add_node_options(exp)
    exp.add_argument("--out", required=True, type=Path, metavar="DIR", help="export directory")
    add_json_option(exp)
    exp.set_defaults(func=run_export)

    ver = actions.add_parser(
        "verify",
        help="verify an export or a node's database; exit 1 naming the first bad entry",
        description="Stream the log, check every link, the Merkle root at every signed "
        "checkpoint and the checkpoint signatures. Exit 0 with a summary, or 1 naming the "
        "first bad entry by seq and why. Reasons: "
        + ", ".join(f"{code} ({label})" for code, label in REASONS.items())
        + ".",
    )
    _add_source(ver)
    _add_key_options(ver)
    ver.add_argument("--strict", action="store_true", help="parse every entry strictly (slower)")
    add_json_option(ver)
    ver.set_defaults(func=run_verify)

    prv = actions.add_parser(
        "prove",
        help="an offline receipt: entry, inclusion proof, signed checkpoint, key",
        description="Print (or write) the receipt that entry SEQ is in the signed log; "
        "anyone can check it with verify-receipt and the node's public key alone.",
    )
    add_node_options(prv)
    prv.add_argument("seq", type=int, metavar="SEQ", help="the entry (Tongban-Audit seq=...)")
    prv.add_argument("--out", type=Path, metavar="FILE", help="write the receipt to FILE")
    prv.add_argument(
        "--wait",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="wait up to SECONDS for a checkpoint covering SEQ (default 2; a running node "
        "signs one within a second)",
    )
    add_json_option(prv)
    prv.set_defaults(func=run_prove)

    rcp = actions.add_parser(
        "verify-receipt",
        help="check a receipt offline (exit 0, or 1 with the reason)",
        description="Check that the receipt's entry is in the tree its checkpoint signs, "
        "with the log key you trust (--vkey).",
    )
    rcp.add_argument("file", metavar="FILE", help="the receipt (JSON), or - for stdin")
    _add_key_options(rcp)
    add_json_option(rcp)
    rcp.set_defaults(func=run_verify_receipt)

    rep = actions.add_parser(
        "replay",
        help="every use of a license, a request's life, or counts by partner and event",
        description="Rebuild what happened from the entries. Without a filter: counts by "
        "partner and event, by event and by outcome. Verify the source first.",
    )
    _add_source(rep)
    which = rep.add_mutually_exclusive_group()
    which.add_argument(
        "--license",
        metavar="IDENTIFIER",
        help="every use of a license (or holder id); needs the node (--node/--config)",
    )
    which.add_argument(
        "--subject",
        metavar="PSEUDONYM",
        help="every entry with this subject pseudonym (works on an export)",
    )
    which.add_argument("--request", metavar="REQUEST_ID", help="every entry of one request")
    add_json_option(rep)
    rep.set_defaults(func=run_replay)

    era = actions.add_parser(
        "erase",
        help="delete an entry's personal payload and salt; the log still verifies",
        description="Delete the payload and salt behind entry SEQ's commitment and append "
        "an audit.erase entry; the chain, the tree and every proof stay valid.",
    )
    add_node_options(era)
    era.add_argument("seq", type=int, metavar="SEQ", help="the entry whose payload to erase")
    era.add_argument(
        "--reason",
        required=True,
        metavar="CODE",
        help="a reason code like holder_request or retention_expired (never free text)",
    )
    era.add_argument(
        "--staff", default="cli", help="account id of who erases (for the log; default cli)"
    )
    add_json_option(era)
    era.set_defaults(func=run_erase)


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export_dir", nargs="?", type=Path, metavar="DIR", help="an export")
    add_node_options(parser, required=False)


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--vkey",
        metavar="FILE",
        help="the log's verifier key from a trusted source (a file, or the key itself)",
    )
    parser.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="VKEY",
        help="a witness's cosigner verifier key, or a partner node's log.vkey (file or key); "
        "repeat for each witness",
    )
    parser.add_argument(
        "--min-cosignatures",
        type=int,
        metavar="K",
        help="cosignatures the latest checkpoint needs from the witnesses (default: all)",
    )


# ---------------------------------------------------------------- shared


@dataclass(frozen=True)
class _Source:
    """What a command reads: an export directory, or a node (its configuration)."""

    export_dir: Path | None
    cfg: NodeConfig | None


def _source(args: argparse.Namespace) -> _Source:
    node_given = args.config is not None or args.node is not None
    if args.export_dir is not None and node_given:
        fail("give an export directory or --node/--config, not both")
    if args.export_dir is not None:
        return _Source(args.export_dir, None)
    if not node_given:
        fail("give an export directory, or --node ID / --config FILE for a node's log")
    return _Source(None, node_config(args))


def _node_database(cfg: NodeConfig) -> Path:
    """The node's audit database; a one-line failure if the node has none yet."""
    try:
        return database_path(cfg.data_dir)
    except NotFound:
        fail(f"{cfg.id} has no audit log under {cfg.data_dir} (has the node run?)")


def _node_vkey(cfg: NodeConfig) -> str:
    """The node's published log key, ``certs/<node>/log.vkey``."""
    path = cfg.node_certs / "log.vkey"
    try:
        return _read_small(path, MAX_KEY_BYTES).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        fail(f"cannot read {path} (run `tongban certs init`)")


def _read_small(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``; a one-line failure if it is larger."""
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        fail(f"{path} is larger than {limit} bytes")
    return data


def _key(value: str, option: str, kind: int = SIG_ED25519) -> str:
    """A verifier key given as a file, or as the key text itself (``name+id+key``).

    ``kind`` is the signature type it must have: a log key (Ed25519) for ``--vkey``, a
    cosigner key (cosignature/v1) for ``--witness``, so a mixed-up key fails here, in
    one line, and not as a puzzling verification failure. For ``--witness`` a Tongban
    node's log key (``certs/<id>/log.vkey``) also does: it stands for that node's
    witness key.
    """
    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:  # key text too long to be a file name
        is_file = False
    if is_file:
        try:
            text = _read_small(path, MAX_KEY_BYTES).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            fail(f"{option}: cannot read {value} as text")
    else:
        text = value.strip()
    try:
        verifier = parse_verifier_key(text)
    except NoteError as exc:
        if not is_file and "+" not in value:
            fail(f"{option}: no such file: {value}")
        fail(f"{option}: {value} is not a verifier key: {exc}")
    if kind == SIG_COSIGNATURE_V1 and verifier.sig_type == SIG_ED25519:
        node = _LOG_ORIGIN.fullmatch(verifier.name)
        if node is not None:
            # A partner's published log key names its witness key too: a node cosigns
            # with its log key under tongban/<id>/witness (gateway.audit.service).
            from gateway.audit.service import witness_name

            return cosigner_verifier_key(witness_name(node[1]), verifier.public_key)
    if verifier.sig_type != kind:
        wanted = "a log key (Ed25519)" if kind == SIG_ED25519 else "a cosigner key (cosignature/v1)"
        fail(f"{option}: {verifier.name} is not {wanted}")
    return text


@dataclass(frozen=True)
class _Witnesses:
    keys: tuple[str, ...]
    minimum: int | None


def _witnesses(args: argparse.Namespace) -> _Witnesses:
    keys = tuple(_key(w, "--witness", SIG_COSIGNATURE_V1) for w in args.witness)
    minimum = args.min_cosignatures
    if minimum is not None:
        if not keys:
            fail("--min-cosignatures needs the witnesses' keys (--witness VKEY)")
        if not 0 <= minimum <= len(keys):
            fail(f"--min-cosignatures must be between 0 and {len(keys)} (the witnesses given)")
    return _Witnesses(keys, minimum)


def _warn(message: str) -> None:
    print(f"tongban: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def _progress_bar(label: str) -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal; yields the ``progress`` callback.

    The bar refreshes only when the work reports progress (no refresh thread), so the
    verifier still sees a single-threaded caller and uses its worker processes.
    """
    if not is_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Display

    bar = Display(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("entries"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        auto_refresh=False,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total, refresh=True)

        yield report


def _std_b64(digest: bytes) -> str:
    """Roots print in standard base64, as in checkpoint notes and ``verify --json``."""
    return base64.b64encode(digest).decode("ascii")


# ---------------------------------------------------------------- export


def run_export(args: argparse.Namespace) -> int:
    cfg = node_config(args)
    db = _node_database(cfg)
    vkey = _node_vkey(cfg)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        fail(f"{out} exists and is not a directory")
    try:
        with _progress_bar(f"exporting {cfg.id}") as progress:
            summary = export(db, out, vkey=vkey, progress=progress)
    except OSError as exc:
        fail(f"cannot write the export to {out}: {exc.strerror or exc}")
    _print_export(summary, as_json=args.json)
    return 0


def _print_export(summary: ExportSummary, *, as_json: bool) -> None:
    doc = {
        "out": str(summary.out_dir),
        "entries": summary.entries,
        "checkpoints": summary.checkpoints,
        "root": _std_b64(summary.root),
    }
    if as_json:
        print_json(doc)
        return
    print(f"exported {summary.entries} entries and {summary.checkpoints} checkpoints")
    print(f"  root  {doc['root']}")
    print(f"  to    {summary.out_dir}/ (entries.jsonl, checkpoints, log.vkey)")


# ---------------------------------------------------------------- verify


def run_verify(args: argparse.Namespace) -> int:
    source = _source(args)
    witnesses = _witnesses(args)
    pinned = _key(args.vkey, "--vkey") if args.vkey is not None else None
    try:
        if source.export_dir is not None:
            report = _verify_export(source.export_dir, pinned, witnesses, args.strict)
        else:
            assert source.cfg is not None
            report = _verify_node(source.cfg, pinned, witnesses, args.strict)
    except VerifySetupError as exc:
        fail(exc.detail)
    _print_report(report, as_json=args.json)
    bad = report.first_bad
    if bad is not None:
        fail(f"the audit log does not verify: first bad entry {bad.seq} ({bad.reason})", 1)
    return 0


def _verify_export(
    directory: Path, pinned: str | None, witnesses: _Witnesses, strict: bool
) -> VerifyReport:
    if not directory.is_dir():
        fail(f"{directory} is not a directory")
    for name in (ENTRIES_FILE, CHECKPOINTS_FILE):
        if not (directory / name).is_file():
            fail(f"{directory / name} is missing: not an audit export")
    own = directory / VKEY_FILE
    if pinned is None and not own.is_file():
        fail(f"{own} is missing; give the node's log key with --vkey")
    if pinned is None:
        _warn(
            f"checking with the export's own {own.name}, which only shows the export agrees "
            "with itself; pin the node's key with --vkey"
        )
    elif own.is_file() and _same_key(own, pinned) is False:
        _warn(f"{own} is not the pinned key; checking with the pinned key (--vkey)")
    with _progress_bar("verifying") as progress:
        return verify_export(
            directory,
            vkey=pinned,
            witnesses=witnesses.keys,
            min_cosignatures=witnesses.minimum,
            strict=strict,
            progress=progress,
        )


def _same_key(path: Path, pinned: str) -> bool | None:
    try:
        return path.read_text(encoding="utf-8").strip() == pinned
    except (OSError, UnicodeDecodeError):
        return None


def _verify_node(
    cfg: NodeConfig, pinned: str | None, witnesses: _Witnesses, strict: bool
) -> VerifyReport:
    db = _node_database(cfg)
    vkey = pinned if pinned is not None else _node_vkey(cfg)
    with _progress_bar(f"verifying {cfg.id}") as progress:
        return verify_database(
            db,
            vkey,
            witnesses=witnesses.keys,
            min_cosignatures=witnesses.minimum,
            strict=strict,
            progress=progress,
        )


def _print_report(report: VerifyReport, *, as_json: bool) -> None:
    doc = report.to_json()
    if as_json:
        print_json(doc)
        return
    bad = report.first_bad
    checked = _count(report.checkpoints, "checkpoint")
    if bad is None:
        print(f"ok: {_count(report.entries, 'entry')}, {checked} checked")
        print(f"  root  {doc['root']}")
        return
    print(f"FAILED: first bad entry {bad.seq}: {bad.reason} ({REASONS.get(bad.reason, '?')})")
    print(f"  {bad.detail}")
    print(f"  stopped after reading {_count(report.entries, 'entry')}; {checked} checked before")


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


# ---------------------------------------------------------------- prove


def run_prove(args: argparse.Namespace) -> int:
    if args.seq < 0:
        fail("SEQ must not be negative")
    if not 0 <= args.wait <= 600:
        fail("--wait must be between 0 and 600 seconds")
    cfg = node_config(args)
    _node_database(cfg)
    receipt = asyncio.run(_prove(cfg, args.seq, args.wait))
    if args.out is None:
        print_json(receipt)
        return 0
    out: Path = args.out
    try:
        out.write_text(json.dumps(receipt, ensure_ascii=False, indent=2) + "\n", "utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    if args.json:
        print_json(
            {
                "out": str(out),
                "seq": receipt["seq"],
                "size": receipt["size"],
                "leaf": receipt["leaf"],
            }
        )
    else:
        print(f"receipt for entry {receipt['seq']} (tree size {receipt['size']}) written to {out}")
    return 0


async def _prove(cfg: NodeConfig, seq: int, wait: float) -> dict[str, Any]:
    """The receipt for ``seq``, waiting (bounded) for a checkpoint that covers it.

    The store reads the latest checkpoint when it opens, so each try opens it anew.
    """
    from gateway.audit.receipt import prove
    from gateway.audit.service import open_audit_store

    deadline = time.monotonic() + wait
    while True:
        async with open_audit_store(cfg) as store:
            size = store.size
            try:
                return await prove(store, seq)
            except NotFound as exc:
                reason = exc.detail
        if seq >= size:
            fail(f"audit entry {seq} does not exist: the log has {size} entries")
        if time.monotonic() >= deadline:
            fail(f"{reason} (the node signs one within a second while it runs)", 1)
        await asyncio.sleep(PROVE_POLL_SECONDS)


# ---------------------------------------------------------------- verify-receipt


def run_verify_receipt(args: argparse.Namespace) -> int:
    from gateway.audit.receipt import ReceiptInvalid, verify_receipt

    receipt = _read_receipt(args.file)
    witnesses = _witnesses(args)
    if args.vkey is not None:
        vkey, pinned = _key(args.vkey, "--vkey"), True
    else:
        carried = receipt.get("vkey")
        if not isinstance(carried, str):
            fail("the receipt carries no log key; give the node's key with --vkey")
        vkey, pinned = carried, False
        _warn(
            "checking with the key inside the receipt, which anyone could have put there; "
            "pin the node's key with --vkey"
        )
    try:
        entry = verify_receipt(
            receipt, vkey, witnesses=witnesses.keys, min_cosignatures=witnesses.minimum
        )
    except ReceiptInvalid as exc:
        seq = receipt.get("seq")
        if args.json:
            print_json(
                {
                    "ok": False,
                    "seq": seq if type(seq) is int else None,
                    "reason": exc.code,
                    "detail": exc.detail,
                }
            )
        fail(f"the receipt does not verify: {exc.detail}", 1)
    checkpoint = parse_checkpoint_body(parse_note(receipt["checkpoint"]).body)
    doc = {
        "ok": True,
        "seq": entry.seq,
        "size": checkpoint.size,
        "origin": checkpoint.origin,
        "root": _std_b64(checkpoint.root),
        "leaf": receipt["leaf"],
        "key": "pinned" if pinned else "receipt",
        "witnesses": len(witnesses.keys),
        "entry": entry.to_dict(),
    }
    if args.json:
        print_json(doc)
        return 0
    print(
        f"ok: entry {entry.seq} is in {checkpoint.origin} at tree size {checkpoint.size}"
        + (
            f", cosigned as required by {len(witnesses.keys)} witness key(s)"
            if witnesses.keys
            else ""
        )
    )
    print(f"  root   {doc['root']}")
    actor = f"{entry.actor.type} {entry.actor.id}" + (
        f" ({entry.actor.sub})" if entry.actor.sub else ""
    )
    print(f"  entry  {entry.ts}  {entry.event}  {actor}  {entry.outcome}")
    return 0


def _read_receipt(name: str) -> dict[str, Any]:
    """The receipt JSON object from a file or stdin (``-``), at most ``MAX_RECEIPT_BYTES``."""
    if name == "-":
        data = sys.stdin.buffer.read(MAX_RECEIPT_BYTES + 1)
        where = "stdin"
        if len(data) > MAX_RECEIPT_BYTES:
            fail(f"the receipt on stdin is larger than {MAX_RECEIPT_BYTES} bytes")
    else:
        where = name
        try:
            data = _read_small(Path(name), MAX_RECEIPT_BYTES)
        except OSError as exc:
            fail(f"cannot read {name}: {exc.strerror or exc}")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        fail(f"{where} is not a receipt: not JSON")
    if not isinstance(doc, dict):
        fail(f"{where} is not a receipt: not a JSON object")
    return doc


# ---------------------------------------------------------------- replay


def run_replay(args: argparse.Namespace) -> int:
    source = _source(args)
    if args.request is not None and not 0 < len(args.request) <= MAX_REQUEST_ID:
        fail(f"--request must be 1 to {MAX_REQUEST_ID} characters")
    if args.license is not None:
        if source.cfg is None:
            fail(
                "--license needs the node's pseudonym key, which an export does not hold: "
                "use --node (or --subject PSEUDONYM on an export)"
            )
        _node_database(source.cfg)
        pseudonym, steps = asyncio.run(_license_uses(source.cfg, args.license))
        _print_steps(
            {"subject": pseudonym}, steps, f"uses of subject {pseudonym}", as_json=args.json
        )
        return 0
    try:
        _replay_entries(_entries(source), args)
    except (ValueError, KeyError, TypeError):
        # Replay trusts its input; a line that is not even an entry means it was not
        # verified first (an EntryInvalid names the entry through the usual path).
        fail("the log holds a line that is not an audit entry: run `tongban audit verify`", 1)
    return 0


def _replay_entries(entries: Iterable[bytes], args: argparse.Namespace) -> None:
    from gateway.audit.replay import count_events, license_uses, request_life

    if args.subject is not None:
        steps = license_uses(entries, args.subject)
        _print_steps(
            {"subject": args.subject},
            steps,
            f"entries of subject {args.subject}",
            as_json=args.json,
        )
    elif args.request is not None:
        steps = request_life(entries, args.request)
        _print_steps(
            {"request_id": args.request},
            steps,
            f"life of request {args.request}",
            as_json=args.json,
        )
    else:
        with _progress_bar("counting") as progress:
            counts = count_events(entries, progress=progress)
        _print_counts(counts, as_json=args.json)


def _entries(source: _Source) -> Iterable[bytes]:
    from gateway.audit.replay import entries_from_database, entries_from_export

    if source.export_dir is not None:
        if not (source.export_dir / ENTRIES_FILE).is_file():
            fail(f"{source.export_dir} is not an audit export (no entries.jsonl)")
        return entries_from_export(source.export_dir)
    assert source.cfg is not None
    return entries_from_database(_node_database(source.cfg))


async def _license_uses(cfg: NodeConfig, identifier: str) -> tuple[str, list[Step]]:
    from gateway.audit.replay import store_license_uses
    from gateway.audit.service import open_audit_store

    async with open_audit_store(cfg) as store:
        return store.pseudonym(identifier), await store_license_uses(store, identifier)


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "seq": step.seq,
        "ts": step.ts,
        "event": step.event,
        "actor": {"type": step.actor_type, "id": step.actor_id, "sub": step.actor_sub},
        "outcome": step.outcome,
        "code": step.code,
        "request_id": step.request_id,
        "meta": dict(step.meta),
    }


def _print_steps(head: dict[str, Any], steps: Sequence[Step], title: str, *, as_json: bool) -> None:
    if as_json:
        print_json({**head, "count": len(steps), "steps": [_step_json(s) for s in steps]})
        return
    print(f"{title}: {_count(len(steps), 'entry')}")
    for s in steps:
        actor = f"{s.actor_type}:{s.actor_id}" + (f" ({s.actor_sub})" if s.actor_sub else "")
        result = s.outcome + (f" {s.code}" if s.code else "")
        extra = s.meta.get("status", "")
        print(f"  {s.seq:>8}  {s.ts}  {s.event:<28} {actor:<24} {result} {extra}".rstrip())


def _print_counts(counts: EventCounts, *, as_json: bool) -> None:
    doc = counts.to_json()
    if as_json:
        print_json(doc)
        return
    print(f"{counts.total} entries")
    print("by partner and event:")
    for partner, events in doc["by_partner"].items():
        for event, n in events.items():
            print(f"  {partner:<12} {event:<32} {n:>8}")
    print("by event:")
    for event, n in doc["by_event"].items():
        print(f"  {event:<45} {n:>8}")
    print("by outcome: " + ", ".join(f"{o} {n}" for o, n in doc["by_outcome"].items()))


# ---------------------------------------------------------------- erase


def run_erase(args: argparse.Namespace) -> int:
    if not ERASE_REASON.fullmatch(args.reason):
        fail(
            "--reason must be a reason code like holder_request or retention_expired "
            "(lowercase letters, digits and _, at most 40), not free text"
        )
    if not STAFF_ID.fullmatch(args.staff):
        fail("--staff must be an account id like staff01 (letters, digits, _ . -)")
    if args.seq < 0:
        fail("SEQ must not be negative")
    cfg = node_config(args)
    _node_database(cfg)
    seq, leaf = asyncio.run(_erase(cfg, args.seq, args.reason, args.staff))
    doc = {"erased_seq": args.seq, "reason": args.reason, "seq": seq, "leaf": b64u_encode(leaf)}
    if args.json:
        print_json(doc)
    else:
        print(f"erased the payload of entry {args.seq} ({args.reason})")
        print(f"  recorded as entry {seq} (audit.erase); the chain and its proofs are unchanged")
    return 0


async def _erase(cfg: NodeConfig, seq: int, reason: str, staff: str) -> tuple[int, bytes]:
    from gateway.audit.service import open_audit_store

    async with open_audit_store(cfg) as store:
        receipt = await store.erase(seq, reason, staff, actor_type="staff")
    return receipt.seq, receipt.leaf
