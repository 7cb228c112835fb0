"""Masking of personal data: the exact forms the desk, logs and error details show."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy import mask_id, mask_name


def test_resident_id_keeps_four_and_four() -> None:
    assert mask_id("11010519491231002X") == "1101**********002X"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("", ""),
        ("1", "*"),
        ("abcd", "****"),
        ("abcde", "a***e"),
        ("abcdefg", "a*****g"),
        ("abcdefgh", "ab****gh"),
        ("110105491231002", "11***********02"),  # 15-digit pre-1999 number
        ("11010519491231002", "11*************02"),  # one digit short
        ("1101051949123100201", "1101***********0201"),
    ],
)
def test_mask_id_by_length(value: str, masked: str) -> None:
    assert mask_id(value) == masked


@given(st.text(max_size=40))
def test_mask_id_keeps_length_and_hides_at_least_half(value: str) -> None:
    masked = mask_id(value)
    assert len(masked) == len(value)
    visible = sum(1 for original, shown in zip(value, masked, strict=True) if shown != "*")
    assert visible <= len(value) // 2
    if len(value) <= 4:
        assert masked == "*" * len(value)


@given(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True))
def test_mask_id_never_shows_the_birth_date(value: str) -> None:
    assert mask_id(value)[6:14] == "*" * 8


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三丰", "张**"),
        ("李四", "李*"),
        ("欧阳娜娜", "欧***"),
        ("阿依古丽·买买提", "阿*******"),
        ("Zhang San", "Z***"),
        ("Li", "L***"),
        ("  王五 ", "王*"),
        ("张", "*"),
        ("", ""),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_disclosed_fields_are_masked_for_people() -> None:
    from gateway.privacy import mask_field

    assert mask_field("holder.id", "11010519491231002X") == "1101**********002X"
    # A 残疾人证 number embeds the holder's identity number: masked inside it too.
    assert mask_field("number", "11010519491231002X44") == "1101**********002X44"
    assert mask_field("data.area_m2", 89.5) == 89.5
    assert mask_field("holder.name", "张三") == "张三"
