"""Money, once: amounts are integers in the currency's minor unit as ISO 4217 defines it.

`format_money(amount, currency, locale)` is the ONE way an amount becomes text (pages, mails, the
CSV, the console); `to_minor(text, currency)` the one way typed major units ("12.50", "220000")
become an integer. No other module divides by 100 (`tools/check_house.py` rule `money`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

from babel.numbers import format_currency

# ISO 4217 minor-unit exponents of the currencies a show or a balance may use (not CLDR's
# display digits, which differ for some currencies): KRW and JPY have no minor unit.
MINOR_DIGITS: dict[str, int] = {"KRW": 0, "JPY": 0, "USD": 2, "EUR": 2, "GBP": 2}
CURRENCIES = tuple(sorted(MINOR_DIGITS))
DEFAULT_CURRENCY: Final = "KRW"
DEFAULT_LOCALE = "en"
MAX_MAJOR = Decimal(10) ** 15  # a typed amount beyond this is a typo, not a price


def minor_digits(currency: str) -> int:
    """The ISO 4217 exponent of `currency` (KeyError for a currency the product does not take)."""
    return MINOR_DIGITS[currency]


def to_major(amount: int, currency: str) -> Decimal:
    """Integer minor units as an exact Decimal of major units (1250 EUR -> 12.50; 220000 KRW -> 220000)."""
    return Decimal(amount).scaleb(-minor_digits(currency))


def format_money(amount: int | None, currency: str, locale: str | None = None) -> str:
    """`amount` minor units of `currency` for a reader of `locale` ("₩220,000", "€80.00")."""
    if amount is None:
        return ""
    digits = minor_digits(currency)
    fmt = None if digits else "¤#,##0"
    return format_currency(
        to_major(int(amount), currency),
        currency,
        format=fmt,
        locale=locale or DEFAULT_LOCALE,
        currency_digits=True,
    )


def to_minor(text: str, currency: str) -> int:
    """Major units typed by a person ("12.50", "1,000") as integer minor units; ValueError when the
    text is not a finite number or has more decimals than the currency has (0.5 won)."""
    raw = text.strip().replace(",", "").replace("_", "")
    if not raw or len(raw) > 32:
        raise ValueError("no amount")
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError("not a number") from exc
    if not value.is_finite() or abs(value) > MAX_MAJOR:
        raise ValueError("not a finite amount of a sane size")
    minor = value.scaleb(minor_digits(currency))
    if minor != minor.to_integral_value():
        raise ValueError("more decimals than the currency has")
    return int(minor)
