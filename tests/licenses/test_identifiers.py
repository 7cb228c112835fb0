"""Identifiers (SPEC 4.1): known answers, named failures and check-character guarantees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ValidationFailed
from gateway.licenses.identifiers import (
    IdentifierError,
    LicenseIdentifier,
    iso7064_mod37_36_check_char,
    license_check_char,
    make_license_identifier,
    make_resident_id,
    make_uscc,
    org_code_check_char,
    parse_license_identifier,
    resident_id_check_char,
    uscc_check_char,
    validate_resident_id,
    validate_uscc,
)
from gateway.privacy import mask_id

USCC = "91110000600037341L"
RESIDENT_ID = "11010519491231002X"
LICENSE = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
TODAY = date(2026, 1, 1)


def _error(call: Callable[[str], object], value: str) -> IdentifierError:
    with pytest.raises(IdentifierError) as caught:
        call(value)
    return caught.value


def _resident(value: str) -> str:
    return validate_resident_id(value, today=TODAY)


# --- known answers ---------------------------------------------------------------


def test_spec_examples_validate() -> None:
    assert validate_uscc(USCC) == USCC
    assert _resident(RESIDENT_ID) == RESIDENT_ID
    parsed = parse_license_identifier(LICENSE)
    assert parsed == LicenseIdentifier(
        type_code="11100000000013338W032",
        issuer_code="11220000013544541J",
        serial="2430599",
        version="001",
        check="F",
    )
    assert str(parsed) == LICENSE


def test_check_characters_of_spec_examples() -> None:
    assert uscc_check_char(USCC[:17]) == "L"
    assert org_code_check_char(USCC[8:16]) == USCC[16] == "1"
    assert resident_id_check_char(RESIDENT_ID[:17]) == "X"
    assert (
        license_check_char("11100000000013338W032", "11220000013544541J", "2430599", "001") == "F"
    )


def test_gb11714_worked_example() -> None:
    # The example of GB 11714: organisation code D2143569-X (a check value of 10 is X).
    assert org_code_check_char("D2143569") == "X"


@pytest.mark.parametrize("code", ["A12425GABC1234002M", "B159D8FA01240000K", "188166C7342000003"])
def test_iso7064_mod37_36_known_answers(code: str) -> None:
    assert iso7064_mod37_36_check_char(code[:-1]) == code[-1]


def test_national_type_code_is_a_uscc_and_a_number() -> None:
    # National catalogue type codes: the defining authority's USCC + 3 digits.
    assert validate_uscc("11100000000013338W") == "11100000000013338W"


def test_normalisation() -> None:
    assert validate_uscc(" " + USCC.lower() + "\n") == USCC
    assert _resident(RESIDENT_ID.lower()) == RESIDENT_ID
    assert str(parse_license_identifier(LICENSE.lower())) == LICENSE


# --- named failures --------------------------------------------------------------

_BAD_ORG_CHECK = "9111000060003734" + "2"

FAILURES: list[tuple[Callable[[str], object], str, str, str]] = [
    (validate_uscc, "91110000600037341M", "check character", "check character is M, expected L"),
    (validate_uscc, "9111000060003734L", "length", "must be 18 characters, got 17"),
    (validate_uscc, "9111I0000600037341", "character 5", "character 5 must be"),
    (validate_uscc, "91110000600037341-", "character 18", "character 18 must be"),
    (
        validate_uscc,
        _BAD_ORG_CHECK + uscc_check_char(_BAD_ORG_CHECK),
        "organisation code check digit",
        "organisation code check digit is 2, expected 1",
    ),
    (_resident, "110105194912310023", "check character", "check character is 3, expected X"),
    (_resident, "110105491231002", "length", "must be 18 characters, got 15"),
    (_resident, "11010519491231A02X", "character 15", "character 15 must be a digit"),
    (_resident, "11010519491231002Y", "character 18", "character 18 must be a digit or X"),
    (
        _resident,
        "11010519490231002" + resident_id_check_char("11010519490231002"),
        "birth date",
        "not a real date",
    ),
    (
        _resident,
        "11010518991231002" + resident_id_check_char("11010518991231002"),
        "birth date",
        "before 1900",
    ),
    (
        _resident,
        make_resident_id("110105", date(2026, 1, 2), "002"),
        "birth date",
        "in the future",
    ),
    (parse_license_identifier, "1.2.156.3005.3.X", "root", "must start with 1.2.156.3005.2"),
    (parse_license_identifier, "urn:license:1", "root", "must start with 1.2.156.3005.2"),
    (parse_license_identifier, LICENSE.replace(".001", ""), "parts", "got 4"),
    (parse_license_identifier, LICENSE + ".1", "parts", "got 6"),
    (parse_license_identifier, LICENSE.replace("W032", "W03_"), "type code", "type code"),
    (
        parse_license_identifier,
        LICENSE.replace("541J", "541K"),
        "issuer code",
        "issuer code: check character is K, expected J",
    ),
    (
        parse_license_identifier,
        LICENSE.replace("11220000013544541J", "1122000001354454"),
        "issuer code",
        "issuer code: must be 18 characters",
    ),
    (parse_license_identifier, LICENSE.replace("2430599", "2430-599"), "serial", "serial"),
    (parse_license_identifier, LICENSE.replace("2430599", "9" * 41), "serial", "serial"),
    (parse_license_identifier, LICENSE.replace(".001.", ".01."), "version", "3 digits"),
    (parse_license_identifier, LICENSE.replace(".001.", ".0A1."), "version", "3 digits"),
    (
        parse_license_identifier,
        LICENSE[:-1] + "G",
        "check character",
        "check character is G, expected F",
    ),
    (parse_license_identifier, LICENSE + "F", "check character", "expected F"),
    (parse_license_identifier, LICENSE[:-1], "check character", "expected F"),
]


@pytest.mark.parametrize(("call", "value", "part", "reason"), FAILURES)
def test_failure_names_the_part(
    call: Callable[[str], object], value: str, part: str, reason: str
) -> None:
    error = _error(call, value)
    assert error.part == part
    assert reason in error.reason
    assert reason in error.detail


def test_error_is_a_validation_failure_keyed_by_field() -> None:
    error = _error(partial(validate_uscc, field="issuer.code"), "91110000600037341M")
    assert isinstance(error, ValidationFailed)
    assert error.code == "validation_failed"
    assert error.status == 400
    assert error.field == "issuer.code"
    assert error.fields == {"issuer.code": "check character is M, expected L"}
    assert error.detail == "issuer.code 91110000600037341M: check character is M, expected L"


def test_default_field_names() -> None:
    assert _error(validate_uscc, "x").field == "uscc"
    assert _error(_resident, "x").field == "id"
    assert _error(parse_license_identifier, "x").field == "identifier"


def test_non_string_is_a_validation_failure() -> None:
    error = _error(validate_resident_id, 11010519491231002)  # type: ignore[arg-type]
    assert error.part == "format"


@pytest.mark.parametrize(
    "value",
    [
        "110105194912310023",
        "11010519490231002" + resident_id_check_char("11010519490231002"),
        "110105194912310021X",
        "11010519491231A02X",
    ],
)
def test_resident_id_errors_show_only_the_masked_number(value: str) -> None:
    error = _error(_resident, value)
    assert value not in error.detail
    assert value[6:14] not in error.detail  # the birth date is personal data too
    assert mask_id(value) in error.detail


@pytest.mark.parametrize(
    "call",
    [validate_uscc, parse_license_identifier],
)
def test_resident_id_in_the_wrong_field_is_masked(call: Callable[[str], object]) -> None:
    error = _error(call, "11010519491231002X")
    assert "11010519491231002X" not in error.detail
    assert "1101**********002X" in error.detail


def test_resident_id_as_license_serial_is_masked() -> None:
    text = "1.2.156.3005.2.T1.91110000600037341L.11010519491231002X.001.Z"
    error = _error(parse_license_identifier, text)
    assert error.part == "check character"
    assert "11010519491231002X" not in error.detail


def test_make_rejects_malformed_parts() -> None:
    with pytest.raises(ValueError):
        make_uscc("9111000", "60003734")
    with pytest.raises(ValueError):
        make_uscc("9111000I", "60003734")
    with pytest.raises(ValueError):
        make_resident_id("11010A", date(1949, 12, 31), "002")
    with pytest.raises(ValueError):
        make_license_identifier("T1", "91110000600037341M", "1")
    with pytest.raises(ValueError):
        make_license_identifier("T1", USCC, "1", "01")
    with pytest.raises(ValueError):
        make_license_identifier("t1", USCC, "1")


# --- exhaustive checks on the SPEC examples --------------------------------------


def _substitutions(value: str, positions: range, alphabet: str) -> list[tuple[int, str]]:
    return [
        (index, value[:index] + char + value[index + 1 :])
        for index in positions
        for char in alphabet
        if char != value[index]
    ]


def _transpositions(value: str, positions: range) -> list[tuple[int, str]]:
    return [
        (index, value[:index] + value[index + 1] + value[index] + value[index + 2 :])
        for index in positions
        if value[index] != value[index + 1]
    ]


def test_every_substitution_in_the_spec_uscc_names_the_check_character() -> None:
    for index, altered in _substitutions(USCC, range(18), USCC_ALPHABET):
        error = _error(validate_uscc, altered)
        assert error.part == "check character"
        if index == 17:
            assert error.reason.endswith("expected L")


def test_every_substitution_in_the_spec_resident_id_is_caught() -> None:
    for index, altered in _substitutions(RESIDENT_ID, range(17), DIGITS):
        error = _error(_resident, altered)
        date_digit = 6 <= index < 14
        assert error.part in (
            {"birth date", "check character"} if date_digit else {"check character"}
        )
    for _, altered in _substitutions(RESIDENT_ID, range(17, 18), DIGITS):
        assert _error(_resident, altered).reason.endswith("expected X")


def test_every_substitution_in_the_spec_license_identifier_is_caught() -> None:
    for index, altered in _substitutions(LICENSE, range(len(LICENSE)), ALNUM):
        if LICENSE[index] == ".":
            continue
        _error(parse_license_identifier, altered)


def test_every_adjacent_transposition_in_the_spec_examples_is_caught() -> None:
    for _, altered in _transpositions(USCC, range(17)):
        assert _error(validate_uscc, altered).part == "check character"
    for _, altered in _transpositions(RESIDENT_ID, range(17)):
        _error(_resident, altered)


# --- MOD 37,36 guarantees, exhaustively over every running state -----------------
#
# One leading character reaches every one of the 36 running states (p = 2s mod 37
# for s = 1..36), and the check character is a bijection of the state, so these
# loops cover the algorithm completely.


def test_mod37_36_detects_every_single_substitution() -> None:
    for state in ALNUM:
        checks = {iso7064_mod37_36_check_char(state + char) for char in ALNUM}
        assert len(checks) == len(ALNUM)


def test_mod37_36_misses_72_adjacent_transpositions() -> None:
    missed = [
        (state, a, b)
        for state in ALNUM
        for a in ALNUM
        for b in ALNUM
        if a != b
        and iso7064_mod37_36_check_char(state + a + b) == iso7064_mod37_36_check_char(state + b + a)
    ]
    assert len(missed) == 72
    assert ("J", "H", "I") in missed  # running value 1, then HI <-> IH


# --- properties over generated identifiers ---------------------------------------

usccs = st.builds(
    make_uscc,
    st.text(USCC_ALPHABET, min_size=8, max_size=8),
    st.text(USCC_ALPHABET, min_size=8, max_size=8),
)
resident_ids = st.builds(
    make_resident_id,
    st.text(DIGITS, min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.text(DIGITS, min_size=3, max_size=3),
)
licenses = st.builds(
    make_license_identifier,
    st.text(ALNUM, min_size=1, max_size=21),
    usccs,
    st.text(ALNUM, min_size=1, max_size=12),
    st.text(DIGITS, min_size=3, max_size=3),
)


@given(usccs)
def test_generated_usccs_validate(code: str) -> None:
    assert validate_uscc(code) == code


@given(resident_ids)
def test_generated_resident_ids_validate(value: str) -> None:
    assert _resident(value) == value
    assert _resident(value.lower()) == value


@given(licenses)
def test_generated_license_identifiers_round_trip(text: str) -> None:
    assert str(parse_license_identifier(text)) == text


@given(usccs)
def test_any_substitution_or_transposition_in_a_uscc_is_caught(code: str) -> None:
    for index, altered in _substitutions(code, range(18), USCC_ALPHABET):
        error = _error(validate_uscc, altered)
        assert error.part == "check character"
        if index == 17:
            assert error.reason.endswith(f"expected {code[17]}")
    for _, altered in _transpositions(code, range(17)):
        assert _error(validate_uscc, altered).part == "check character"


@given(resident_ids)
def test_any_substitution_or_transposition_in_a_resident_id_is_caught(value: str) -> None:
    for index, altered in _substitutions(value, range(18), DIGITS + "X"):
        error = _error(_resident, altered)
        if index == 17:
            assert error.reason == f"check character is {altered[17]}, expected {value[17]}"
        elif not 6 <= index < 14:
            assert error.part == (
                "check character" if altered[index] != "X" else f"character {index + 1}"
            )
    for _, altered in _transpositions(value, range(17)):
        _error(_resident, altered)


@settings(max_examples=50)
@given(licenses)
def test_any_substitution_in_a_license_identifier_is_caught(text: str) -> None:
    parsed = parse_license_identifier(text)
    start = len("1.2.156.3005.2.")
    for index, altered in _substitutions(text, range(start, len(text)), ALNUM):
        if text[index] == ".":
            continue
        error = _error(parse_license_identifier, altered)
        if index == len(text) - 1:
            assert error.reason == f"check character is {altered[index]}, expected {parsed.check}"
    issuer_start = start + len(parsed.type_code) + 1
    for _, altered in _transpositions(text, range(issuer_start, issuer_start + 17)):
        assert _error(parse_license_identifier, altered).part == "issuer code"
