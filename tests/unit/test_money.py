"""kit/money.py: ISO 4217 minor units, babel's formatting for the reader's locale, parsing typed amounts."""

from __future__ import annotations

from typing import get_args

import pytest

from boxoffice.catalog.schemas import Currency
from boxoffice.kit.money import CURRENCIES, format_money, minor_digits, to_major, to_minor


def test_iso_4217_exponents() -> None:
    assert [minor_digits(c) for c in ("KRW", "JPY", "EUR", "USD")] == [0, 0, 2, 2]
    with pytest.raises(KeyError):
        minor_digits("XYZ")


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "text"),
    [
        (220_000, "KRW", "ko", "₩220,000"),
        (220_000, "KRW", "en", "₩220,000"),
        (5_000_000, "KRW", "ko_KR", "₩5,000,000"),
        (8_000, "EUR", "en", "€80.00"),
        (8_050, "EUR", "de_DE", "80,50\xa0€"),
        (8_000, "USD", "en_US", "$80.00"),
        (1_500, "JPY", "en", "¥1,500"),
        (0, "KRW", "en", "₩0"),
    ],
)
def test_format_money(amount: int, currency: str, locale: str, text: str) -> None:
    assert format_money(amount, currency, locale) == text


def test_none_is_blank_and_major_units_are_exact() -> None:
    assert format_money(None, "KRW", "ko") == ""
    assert str(to_major(1250, "EUR")) == "12.50"
    assert str(to_major(220_000, "KRW")) == "220000"


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("12.50", "EUR", 1250), ("1,000", "USD", 100_000), ("220000", "KRW", 220_000), (" 0.01 ", "EUR", 1)],
)
def test_to_minor(text: str, currency: str, minor: int) -> None:
    assert to_minor(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("0.5", "KRW"),
        ("12.505", "EUR"),
        ("nan", "EUR"),
        ("inf", "KRW"),
        ("", "EUR"),
        ("abc", "EUR"),
        ("1e400", "KRW"),
    ],
)
def test_to_minor_refuses(text: str, currency: str) -> None:
    with pytest.raises(ValueError):
        to_minor(text, currency)


def test_the_api_takes_exactly_the_currencies_kit_money_knows() -> None:
    assert tuple(sorted(get_args(Currency))) == CURRENCIES
