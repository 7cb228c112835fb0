"""Identifiers of e-licenses, organisations and residents (SPEC 4.1).

Three national formats, each with a check character so that a mistyped or misread
identifier is refused before it reaches a partner:

- unified social credit code (统一社会信用代码, GB 32100-2015), with the GB 11714
  organisation code (组织机构代码) embedded in positions 9-17;
- resident identity number (公民身份号码, GB 11643-1999);
- e-license identifier (电子证照标识, GB/T 36904-2018).

``validate_*`` and ``parse_license_identifier`` return the normalised value or raise
``IdentifierError``, which names the part that is wrong (``part``) and says in plain
words what was found and what was expected. ``make_*`` build valid identifiers for demo
data and tests; they raise ``ValueError`` for malformed parts, which is a programming
error rather than bad input.

Which errors each check character is guaranteed to catch (asserted exhaustively in
``tests/licenses/test_identifiers.py``):

- GB 32100 (MOD 31 with weights 3^(i-1)) and GB 11643 (ISO 7064 MOD 11-2): every
  single substitution and every transposition of two adjacent characters, check
  character included, because both use a prime modulus with distinct non-zero weights
  on neighbouring positions.
- ISO/IEC 7064 MOD 37,36 (e-license identifier): every single substitution, but not
  every adjacent transposition: 72 of the 45,360 (state, a, b) combinations go
  undetected, e.g. ``HI`` <-> ``IH`` when the running value is 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from gateway.errors import ValidationFailed
from gateway.privacy import mask_id

__all__ = [
    "LICENSE_ROOT",
    "IdentifierError",
    "LicenseIdentifier",
    "iso7064_mod37_36_check_char",
    "license_check_char",
    "make_license_identifier",
    "make_resident_id",
    "make_uscc",
    "org_code_check_char",
    "parse_license_identifier",
    "resident_id_check_char",
    "uscc_check_char",
    "validate_resident_id",
    "validate_uscc",
]


class IdentifierError(ValidationFailed):
    """An identifier failed validation; ``part`` names what is wrong.

    ``part`` is a short stable name ("check character", "birth date", "issuer code",
    "character 5", ...) that code and tests can match on; ``reason`` is the sentence
    for people ("check character is M, expected D") and goes into ``fields`` under the
    caller's field name. ``shown`` is how the value may appear in ``detail``: already
    masked for personal identifiers, or ``None`` to leave it out.
    """

    def __init__(
        self, part: str, reason: str, *, field: str = "identifier", shown: str | None = None
    ) -> None:
        where = f"{field} {shown}" if shown else field
        super().__init__(f"{where}: {reason}", fields={field: reason})
        self.part = part
        self.reason = reason
        self.field = field


def _text(value: object, field: str) -> str:
    """Return ``value`` stripped of surrounding whitespace, which forms and scanners add.

    JSON callers sometimes send numbers for identifiers; refusing them here keeps a
    type mistake a 400 rather than an internal error.
    """
    if not isinstance(value, str):
        raise IdentifierError("format", "must be a string", field=field)
    return value.strip()


_RESIDENT_ID_SHAPE = re.compile(r"(?<![0-9A-Z])(?:[0-9]{17}[0-9X]|[0-9]{15})(?![0-9A-Z])")
"""An 18-character resident identity number, or a 15-digit pre-1999 one, standing alone."""


def _echo(value: str) -> str | None:
    """Return ``value`` as it may be repeated in an error detail, or ``None`` to omit it.

    Organisation and license identifiers are public and help a reader find the bad
    input, so they are echoed — but a caller may put a resident identity number in the
    wrong field (or a license serial), so anything shaped like one is masked. Long or
    non-printable input is left out rather than repeated.
    """
    if len(value) > 100 or not value.isascii() or not value.isprintable():
        return None
    return _RESIDENT_ID_SHAPE.sub(lambda match: mask_id(match.group()), value)


def _check_mismatch(part: str, found: str, expected: str) -> str:
    """The sentence SPEC 4.1 asks for, e.g. ``check character is M, expected D``."""
    return f"{part} is {found}, expected {expected}"


# --- Unified social credit code (GB 32100-2015) ------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 code characters: digits and capitals without I, O, S, V, Z (too easily
misread as 1, 0, 5, U, 2); a character's value is its index."""

_USCC_VALUES = {char: value for value, char in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 3^(i-1) mod 31, i = 1..17
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc_check_char(first17: str) -> str:
    """Check character (position 18) of a unified social credit code.

    GB 32100: C18 = 31 - (sum of value * 3^(i-1) mod 31) mod 31, where 31 becomes 0.
    """
    if len(first17) != 17 or any(char not in _USCC_VALUES for char in first17):
        raise ValueError("expected 17 characters of the GB 32100 alphabet")
    total = sum(_USCC_VALUES[char] * w for char, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """Check character of a GB 11714 organisation code (the 9th character).

    Digits count as themselves and A-Z as 10-35; C9 = 11 - (weighted sum mod 11),
    where 10 is written ``X`` and 11 is written ``0``.
    """
    if len(first8) != 8 or not first8.isascii() or not first8.isalnum() or first8 != first8.upper():
        raise ValueError("expected 8 characters of 0-9 and A-Z")
    total = sum(int(char, 36) * w for char, w in zip(first8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def validate_uscc(code: str, *, field: str = "uscc") -> str:
    """Return ``code`` normalised to upper case if it is a valid unified social credit code.

    Checks the length, the alphabet, the check character over all 17 characters and
    then the embedded organisation code's own check digit. The overall check character
    runs first because it covers every position and catches every single mistyped
    character; the organisation code check then catches codes whose final check was
    computed over a bad organisation code.

    Positions 1 (registration authority, 登记管理部门: 1, 5, 9, Y, ...), 2 (entity
    type, 机构类别) and 3-8 (administrative division, GB/T 2260) are deliberately
    only checked against the alphabet: their tables change with policy and are not
    ours to enforce, and the check character already covers them.
    """
    value = _text(code, field).upper()
    shown = _echo(value)
    if len(value) != 18:
        raise IdentifierError(
            "length", f"must be 18 characters, got {len(value)}", field=field, shown=shown
        )
    for position, char in enumerate(value, start=1):
        if char not in _USCC_VALUES:
            raise IdentifierError(
                f"character {position}",
                f"character {position} must be a digit or a capital letter other than "
                "I, O, S, V, Z",
                field=field,
                shown=shown,
            )
    expected = uscc_check_char(value[:17])
    if value[17] != expected:
        reason = _check_mismatch("check character", value[17], expected)
        raise IdentifierError("check character", reason, field=field, shown=shown)
    org_expected = org_code_check_char(value[8:16])
    if value[16] != org_expected:
        part = "organisation code check digit"
        reason = _check_mismatch(part, value[16], org_expected)
        raise IdentifierError(part, reason, field=field, shown=shown)
    return value


def make_uscc(prefix8: str, org8: str) -> str:
    """Build a valid unified social credit code for demo data.

    ``prefix8`` is positions 1-8 (authority, entity type, division code) and ``org8``
    the first 8 characters of the organisation code; both check characters are
    computed.
    """
    if len(prefix8) != 8 or len(org8) != 8:
        raise ValueError("prefix8 and org8 must be 8 characters each")
    first17 = prefix8 + org8 + org_code_check_char(org8)
    return first17 + uscc_check_char(first17)


# --- Resident identity number (GB 11643-1999) --------------------------------------

_DIGITS = frozenset("0123456789")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(18-i) mod 11
_ID_CHECK = "10X98765432"  # indexed by the weighted sum mod 11
_EARLIEST_BIRTH_YEAR = 1900


def resident_id_check_char(first17: str) -> str:
    """Check character of a resident identity number: ISO 7064 MOD 11-2.

    ``X`` stands for 10; with it the weighted sum of all 18 characters is 1 mod 11.
    """
    if len(first17) != 17 or any(char not in _DIGITS for char in first17):
        raise ValueError("expected 17 digits")
    total = sum(int(char) * w for char, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def validate_resident_id(value: str, *, field: str = "id", today: date | None = None) -> str:
    """Return the resident identity number with ``x`` written ``X`` if it is valid.

    Checks the length, that characters 1-17 are digits and 18 a digit or ``X``, that
    positions 7-14 are a real birth date from 1900 up to ``today`` (default: the
    system date), and the MOD 11-2 check character. The date is checked before the
    check character because a mistyped date is then named precisely.

    Error details show the number only masked (``mask_id``) and never repeat the birth
    date: both are personal data (SPEC 3).
    """
    text = _text(value, field).upper()
    shown = mask_id(text)
    if len(text) != 18:
        raise IdentifierError(
            "length", f"must be 18 characters, got {len(text)}", field=field, shown=shown
        )
    for position, char in enumerate(text[:17], start=1):
        if char not in _DIGITS:
            part = f"character {position}"
            raise IdentifierError(part, f"{part} must be a digit", field=field, shown=shown)
    if text[17] not in _DIGITS and text[17] != "X":
        raise IdentifierError(
            "character 18", "character 18 must be a digit or X", field=field, shown=shown
        )
    problem = _birth_date_problem(text[6:14], today or date.today())
    if problem:
        raise IdentifierError("birth date", problem, field=field, shown=shown)
    expected = resident_id_check_char(text[:17])
    if text[17] != expected:
        reason = _check_mismatch("check character", text[17], expected)
        raise IdentifierError("check character", reason, field=field, shown=shown)
    return text


def _birth_date_problem(yyyymmdd: str, today: date) -> str | None:
    """Why eight digits are not a plausible birth date, or ``None`` if they are."""
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return "birth date (positions 7-14) is not a real date"
    if born.year < _EARLIEST_BIRTH_YEAR:
        return f"birth date (positions 7-14) is before {_EARLIEST_BIRTH_YEAR}"
    if born > today:
        return "birth date (positions 7-14) is in the future"
    return None


def make_resident_id(area6: str, birth: date, seq3: str) -> str:
    """Build a valid resident identity number for demo data.

    ``area6`` is the GB/T 2260 division code of registration and ``seq3`` the
    sequence code (odd for men, even for women); the check character is computed.
    """
    if len(area6) != 6 or len(seq3) != 3:
        raise ValueError("area6 must be 6 digits and seq3 3 digits")
    first17 = f"{area6}{birth:%Y%m%d}{seq3}"
    return first17 + resident_id_check_char(first17)


# --- E-license identifier (GB/T 36904-2018) ----------------------------------------

LICENSE_ROOT = "1.2.156.3005.2"
"""OID arc under which every e-license identifier lives (China, 3005, e-licenses)."""

_MOD37_36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD37_36_VALUES = {char: value for value, char in enumerate(_MOD37_36_ALPHABET)}
_CODE_PART = re.compile(r"[0-9A-Z]{1,40}")
_VERSION = re.compile(r"[0-9]{3}")


def iso7064_mod37_36_check_char(data: str) -> str:
    """ISO/IEC 7064 MOD 37,36 (hybrid system) check character over ``data``.

    With M = 36: p starts at M; for each character of value a (0-9, A-Z = 0..35),
    s = (p + a) mod M, read as M when 0, and p = 2s mod (M + 1). The check character
    is the c with (p + c) mod M = 1. Confirmed against the ISO 7064 example
    ``A12425GABC1234002M`` and the SPEC 4.1 e-license identifier (check ``F``).
    """
    if any(char not in _MOD37_36_VALUES for char in data):
        raise ValueError("expected characters 0-9 and A-Z")
    p = 36
    for char in data:
        s = (p + _MOD37_36_VALUES[char]) % 36 or 36
        p = (s * 2) % 37
    return _MOD37_36_ALPHABET[(1 - p) % 36]


def license_check_char(type_code: str, issuer: str, serial: str, version: str) -> str:
    """Check character of an e-license identifier (GB/T 36904).

    MOD 37,36 over type code, issuer code, serial and version joined without dots.
    """
    return iso7064_mod37_36_check_char(type_code + issuer + serial + version)


@dataclass(frozen=True)
class LicenseIdentifier:
    """A parsed e-license identifier (电子证照标识); ``str()`` gives the canonical text.

    Build one with ``parse_license_identifier``, which guarantees the parts are valid.
    """

    type_code: str
    issuer_code: str
    serial: str
    version: str
    check: str

    def __str__(self) -> str:
        parts = (self.type_code, self.issuer_code, self.serial, self.version, self.check)
        return ".".join((LICENSE_ROOT, *parts))


def parse_license_identifier(text: str, *, field: str = "identifier") -> LicenseIdentifier:
    """Parse and validate an e-license identifier, naming the part that is wrong.

    Form: ``1.2.156.3005.2.<type code>.<issuer USCC>.<serial>.<version>.<check>``.
    Letters are normalised to upper case (the check alphabet has no lower case, so
    ``a`` and ``A`` could not be told apart by it anyway). Rules, in order:

    - "root": starts with ``1.2.156.3005.2``; "parts": exactly five parts follow;
    - "type code": 1-40 of 0-9A-Z. National catalogue codes are the defining
      authority's USCC plus a 3-digit number (``11100000000013338W`` + ``032``),
      but local catalogues differ, so only the alphabet is enforced;
    - "issuer code": a valid USCC (both check levels), with the USCC's own reason;
    - "serial": 1-40 of 0-9A-Z, the alphabet the check character is defined over;
    - "version": exactly 3 digits;
    - "check character": the MOD 37,36 character over the four parts above.
    """
    value = _text(text, field).upper()
    shown = _echo(value)

    def fail(part: str, reason: str) -> IdentifierError:
        return IdentifierError(part, reason, field=field, shown=shown)

    if value != LICENSE_ROOT and not value.startswith(LICENSE_ROOT + "."):
        raise fail("root", f"must start with {LICENSE_ROOT}")
    parts = value[len(LICENSE_ROOT) + 1 :].split(".")
    if len(parts) != 5:
        raise fail(
            "parts",
            "must have 5 parts after the root (type code, issuer code, serial, version, "
            f"check character), got {len(parts)}",
        )
    type_code, issuer, serial, version, check = parts
    if not _CODE_PART.fullmatch(type_code):
        raise fail("type code", "type code must be 1-40 digits or capital letters")
    try:
        validate_uscc(issuer, field=field)
    except IdentifierError as error:
        raise fail("issuer code", f"issuer code: {error.reason}") from None
    if not _CODE_PART.fullmatch(serial):
        raise fail("serial", "serial must be 1-40 digits or capital letters")
    if not _VERSION.fullmatch(version):
        raise fail("version", "version must be exactly 3 digits")
    expected = license_check_char(type_code, issuer, serial, version)
    if check != expected:
        if len(check) == 1:
            reason = _check_mismatch("check character", check, expected)
        else:
            reason = f"check character must be one character, expected {expected}"
        raise fail("check character", reason)
    return LicenseIdentifier(type_code, issuer, serial, version, check)


def make_license_identifier(type_code: str, issuer: str, serial: str, version: str = "001") -> str:
    """Build a valid e-license identifier for demo data, computing its check character.

    The result is parsed back, so malformed parts fail here (``ValueError``) rather
    than in a partner's verifier.
    """
    try:
        check = license_check_char(type_code, issuer, serial, version)
        text = ".".join((LICENSE_ROOT, type_code, issuer, serial, version, check))
        return str(parse_license_identifier(text))
    except IdentifierError as error:
        raise ValueError(error.reason) from error
