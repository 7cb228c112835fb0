"""Masking of personal data (个人信息去标识化) for logs, error details and the desk.

SPEC section 3 forbids personal data in errors, and the audit log and the hall desk
only ever need enough of an identifier or a name for a person to recognise it, never
enough to reuse it. These helpers are the single place that decides how much stays
visible, so every log line, problem detail and desk page masks the same way.
"""

from __future__ import annotations

import re

__all__ = ["mask_id", "mask_name"]

_STAR = "*"


def mask_id(value: str) -> str:
    """Mask a personal identifier, keeping only enough to recognise it.

    An 18-character resident identity number keeps its first 4 characters (the
    province and city of registration) and its last 4 (sequence and check character)
    — the common display form on Chinese government pages, which hides the birth
    date: ``11010519491231002X`` becomes ``1101**********002X``. Longer values keep
    the same 4 + 4. Shorter values (a mistyped or 15-digit legacy number, a passport
    number) keep at most 2 characters at each end and never more than half of the
    value, and anything of 4 characters or fewer becomes all stars.
    """
    length = len(value)
    if length <= 4:
        return _STAR * length
    keep = 4 if length >= 18 else min(2, length // 4)
    return value[:keep] + _STAR * (length - 2 * keep) + value[length - keep :]


def mask_name(name: str) -> str:
    """Mask a person's name, keeping the family name so staff can still address them.

    A Chinese name keeps its first character (the family name) and stars the rest
    one for one, as Chinese government pages do: ``张三丰`` becomes ``张**``. Any other
    name keeps its first letter followed by a fixed ``***``, so the mask does not
    reveal the length of the name. A one-character name is all stars, because keeping
    it would show the whole name.
    """
    name = name.strip()
    if len(name) <= 1:
        return _STAR * len(name)
    first = name[0]
    if _is_cjk(first):
        return first + _STAR * (len(name) - 1)
    return first + _STAR * 3


def _is_cjk(char: str) -> bool:
    """Whether ``char`` is a CJK unified ideograph (basic block or an extension).

    Family names are almost always in the basic block; the extensions matter for
    rare characters in names, which are the reason they were encoded.
    """
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF  # CJK Unified Ideographs
        or 0x3400 <= code <= 0x4DBF  # Extension A
        or 0x20000 <= code <= 0x323AF  # Extensions B to H
        or 0xF900 <= code <= 0xFAFF  # Compatibility Ideographs
    )


MASKED_FIELDS = frozenset({"holder.id"})
"""Identity numbers: shown masked even when disclosed (staff compare, never copy)."""

_EMBEDDED_ID = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx]")


def mask_embedded_ids(value: str) -> str:
    """Mask resident identity numbers inside another value.

    Some license numbers are built from the holder's identity number (a 残疾人证
    number is the 18-character identity number followed by category and level), so
    masking only ``holder.id`` would show the number in full one line above it. A run
    counts as an identity number when its check character is right (GB 11643).
    """

    def mask(m: re.Match[str]) -> str:
        text = m.group(0)
        from gateway.licenses.identifiers import resident_id_check_char  # no import cycle

        if resident_id_check_char(text[:17]) != text[17].upper():
            return text
        return mask_id(text)

    return _EMBEDDED_ID.sub(mask, value)


def mask_field(name: str, value: object) -> object:
    """A disclosed license field as shown to people (desk, CLI): identity numbers masked."""
    if not isinstance(value, str):
        return value
    return mask_id(value) if name in MASKED_FIELDS else mask_embedded_ids(value)
