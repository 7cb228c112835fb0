"""The audit log (审计日志, SPEC 6): entries, store, checkpoints, witnessing, verification.

Public API, by module::

    events        AuditEvent, AuditReceipt, AuditLog            what the node hands in
    entry         Entry, parse_entry, EntryInvalid              the hashed bytes
    store         AuditStore, StoreCorrupt                      SQLite, group commit
    checkpointer  Checkpointer, CheckpointRefused               signed checkpoints
    witness       add_checkpoint, submit_checkpoint,            C2SP tlog-witness
                  CosignatureCollector, WitnessPartner, Witness* errors, HistoryRewritten
    export        export, read_checkpoints, ExportSummary       the auditor's directory
    verify        verify_export, verify_database, VerifyReport  first bad entry
    receipt       prove, verify_receipt, ReceiptInvalid         offline inclusion receipts
    replay        license_uses, request_life, count_events      what happened

Names are loaded on first use: ``gateway.keys`` imports ``gateway.audit.note`` and the
store imports ``gateway.keys``, so an eager package would import itself in a circle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.audit.checkpointer import Checkpointer, CheckpointRefused
    from gateway.audit.entry import Entry, EntryInvalid, parse_entry
    from gateway.audit.events import AuditEvent, AuditLog, AuditReceipt
    from gateway.audit.export import ExportSummary, export, read_checkpoints
    from gateway.audit.receipt import ReceiptInvalid, prove, verify_receipt
    from gateway.audit.replay import (
        EventCounts,
        Step,
        count_events,
        entries_from_database,
        entries_from_export,
        license_uses,
        request_life,
        store_license_uses,
    )
    from gateway.audit.store import AuditStore, StoreCorrupt
    from gateway.audit.verify import REASONS, FirstBad, VerifyReport, verify_database, verify_export
    from gateway.audit.witness import (
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
        submit_checkpoint,
    )

_EXPORTS: dict[str, str] = {
    "AuditEvent": "events",
    "AuditLog": "events",
    "AuditReceipt": "events",
    "Entry": "entry",
    "EntryInvalid": "entry",
    "parse_entry": "entry",
    "AuditStore": "store",
    "StoreCorrupt": "store",
    "Checkpointer": "checkpointer",
    "CheckpointRefused": "checkpointer",
    "CosignatureCollector": "witness",
    "ForkedCheckpoint": "witness",
    "HistoryRewritten": "witness",
    "WitnessBadRequest": "witness",
    "WitnessConflict": "witness",
    "WitnessError": "witness",
    "WitnessForbidden": "witness",
    "WitnessPartner": "witness",
    "WitnessUnknownLog": "witness",
    "add_checkpoint": "witness",
    "submit_checkpoint": "witness",
    "ExportSummary": "export",
    "export": "export",
    "read_checkpoints": "export",
    "REASONS": "verify",
    "FirstBad": "verify",
    "VerifyReport": "verify",
    "verify_database": "verify",
    "verify_export": "verify",
    "ReceiptInvalid": "receipt",
    "prove": "receipt",
    "verify_receipt": "receipt",
    "EventCounts": "replay",
    "Step": "replay",
    "count_events": "replay",
    "entries_from_database": "replay",
    "entries_from_export": "replay",
    "license_uses": "replay",
    "request_life": "replay",
    "store_license_uses": "replay",
}

__all__ = [
    "REASONS",
    "AuditEvent",
    "AuditLog",
    "AuditReceipt",
    "AuditStore",
    "CheckpointRefused",
    "Checkpointer",
    "CosignatureCollector",
    "Entry",
    "EntryInvalid",
    "EventCounts",
    "ExportSummary",
    "FirstBad",
    "ForkedCheckpoint",
    "HistoryRewritten",
    "ReceiptInvalid",
    "Step",
    "StoreCorrupt",
    "VerifyReport",
    "WitnessBadRequest",
    "WitnessConflict",
    "WitnessError",
    "WitnessForbidden",
    "WitnessPartner",
    "WitnessUnknownLog",
    "add_checkpoint",
    "count_events",
    "entries_from_database",
    "entries_from_export",
    "export",
    "license_uses",
    "parse_entry",
    "prove",
    "read_checkpoints",
    "request_life",
    "store_license_uses",
    "submit_checkpoint",
    "verify_database",
    "verify_export",
    "verify_receipt",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
