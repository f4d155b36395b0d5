"""What every request model shares: no unknown fields, strict types ("1" is not an int), and no
control characters in text.

U+0000 cannot be stored in a PostgreSQL text column (it was a 500 with the row in the traceback);
the other C0/C1 controls and lone surrogates are never meaningful in a name, an email or a search,
and make log lines and CSV exports lie. Tab, line feed and carriage return stay allowed (a
description may have lines). Pure pydantic: imported by schemas and by the endpoints' query types.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Strict,
    field_validator,
)

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_characters(value: str) -> bool:
    return _FORBIDDEN.search(value) is not None


def refuse_control_characters(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters")
    return value


def _check(value: Any) -> None:
    if isinstance(value, str):
        refuse_control_characters(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)


# What pydantic's lax datetime parsing accepts beyond ISO 8601 is a number of seconds ("12345",
# "1700000000.5"): an ISO date-time starts with its date and time, so a timestamp must too.
_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_string(value: Any) -> Any:
    if isinstance(value, datetime):  # the product's own callers (demo data)
        return value
    if not isinstance(value, str) or not _ISO_DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


# FastAPI validates a body as Python objects, where strict mode would refuse every string for a
# datetime; a timestamp is therefore parsed laxly but only ever from an ISO 8601 string (never a
# number, nor a number in a string). Also for query parameters (always lax).
Timestamp = Annotated[AwareDatetime, Strict(False), BeforeValidator(_iso_string)]


def decimal_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _decimal_digits(value: Any) -> Any:
    if isinstance(value, str) and not decimal_digits(value):
        raise ValueError("must be a whole number written in decimal digits")
    return value


# An integer in a query or a path: only decimal digits. Lax int parsing (every query value is a
# string) would also take "+1", " 1", "1_0" and "1.0".
WholeNumber = Annotated[int, BeforeValidator(_decimal_digits)]

# For query parameters and headers (request models get the check from RequestModel).
Text = Annotated[str, AfterValidator(refuse_control_characters)]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")  # before stripping: a control character is refused, not trimmed
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        _check(value)
        return value
