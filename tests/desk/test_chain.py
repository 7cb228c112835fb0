"""What the auditor pages read from a real audit store: status, uses, usage-record checks."""

from __future__ import annotations

import time

import pytest

from gateway.audit.checkpointer import Checkpointer
from gateway.audit.events import AuditEvent
from gateway.audit.service import open_audit_store
from gateway.desk.chain import chain_status, check_receipt, uses_of
from gateway.desk.receipts import ReceiptRef
from gateway.errors import NotFound, ValidationFailed
from gateway.keys import load_log_key
from tests.support.network import Tree

JIAN = "cn-360800"
LID = "1.2.156.3005.2.11100000MB0341032Y001.113308000026472540.2146628.001.U"


def verify_event(subject: str, staff: str) -> AuditEvent:
    return AuditEvent(
        event="license.verify",
        actor_type="staff",
        actor_id=JIAN,
        actor_sub=staff,
        subject=subject,
        meta={"verdict": "valid", "purpose": "TB-360800-0101"},
    )


async def test_receipts_status_and_uses(tree: Tree) -> None:
    cfg = tree.config(JIAN)
    async with open_audit_store(cfg) as log:
        first = await log.append(verify_event(LID, "staff01"))
        await log.append(verify_event("another-license", "staff02"))
        second = await log.append(verify_event(LID, "staff02"))
        ref = ReceiptRef.of(JIAN, second)

        status = await chain_status(cfg, log, now=time.time())
        assert status.size == 3 and status.checkpoint is None
        pending = await check_receipt(cfg, log, ref)
        assert pending.state == "pending" and pending.to_json()["included"] is False

        await Checkpointer(log, load_log_key(cfg)).checkpoint_now()
        included = await check_receipt(cfg, log, ref)
        assert included.state == "included"
        assert included.entry is not None and included.entry.actor.sub == "staff02"
        assert included.checkpoint is not None and included.checkpoint.size == 3

        forged = ReceiptRef(JIAN, first.seq, second.leaf)  # a real leaf at the wrong seq
        assert (await check_receipt(cfg, log, forged)).state == "mismatch"

        with pytest.raises(ValidationFailed) as bad_node:
            await check_receipt(cfg, log, ReceiptRef("cn-330800", 0, second.leaf))
        assert bad_node.value.code == "validation_failed"
        assert bad_node.value.fields["ref"] == "recorded at cn-330800; check it at that node"
        with pytest.raises(NotFound) as missing:
            await check_receipt(cfg, log, ReceiptRef(JIAN, 99, second.leaf))
        assert missing.value.code == "not_found"

        uses, more = await uses_of(log, LID)
        assert [u["seq"] for u in uses] == [second.seq, first.seq] and more is False
        assert [u["actor"]["sub"] for u in uses] == ["staff02", "staff01"]
        assert LID not in repr(uses)  # the log holds only the pseudonym

        signed = await chain_status(cfg, log, now=time.time() + 100)
        assert signed.checkpoint is not None and signed.checkpoint.size == 3
        assert signed.age_seconds is not None and 99 <= signed.age_seconds <= 102
        assert signed.to_json()["checkpoint"]["cosignatures"] == []
