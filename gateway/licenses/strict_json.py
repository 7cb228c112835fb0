"""Strict JSON reading for license documents, QR claims and request bodies.

Python's ``json`` accepts duplicate member names (the last one wins) and the constants
``NaN`` and ``Infinity``. Two parsers that disagree about which duplicate wins can be
shown different documents under one signature, so every JSON object that is signed or
that drives a decision is read here, where both are refused.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["load_object"]


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def load_object(raw: bytes | str) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be one object; ``ValueError`` says why it is not."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise ValueError("not JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
