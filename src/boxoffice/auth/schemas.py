"""Request and response models of the accounts API (strict: unknown fields and wrong types -> 422)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from boxoffice.kit.inputs import RequestModel

# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is what the
# verification link proves; email-validator refuses special-use domains (.local, .test) we use.
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")

Password = Annotated[str, Field(min_length=8, max_length=128)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def normalize_email(value: str) -> str:
    return value.strip().lower()


class _Strict(RequestModel):
    pass


class SignupRequest(_Strict):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Password
    name: Name
    phone: Phone | None = None
    address: Address | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = normalize_email(value)
        if not _EMAIL_RE.match(value):
            raise ValueError("not a valid email address")
        return value


class LoginRequest(_Strict):
    # No format rules at login: anything that is not a known email simply fails to log in.
    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=128)]


class RefreshRequest(_Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class ProfileUpdate(_Strict):
    """Fields left out stay as they are; phone and address accept null to clear them."""

    name: Name | None = None
    phone: Phone | None = None
    address: Address | None = None

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("name cannot be null")
        return value


TOP_UP_MAX = 10_000_000  # minor units of the balance's currency in one top-up


class TopUpRequest(_Strict):
    amount: Annotated[int, Field(ge=1, le=TOP_UP_MAX, description="Minor units of the balance's currency")]


class SignupResponse(BaseModel):
    id: int
    email: str
    name: str
    role: Literal["USER", "ADMIN"]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class Profile(BaseModel):
    id: int
    email: str
    name: str
    role: Literal["USER", "ADMIN", "DOOR"]
    balance: int
    balance_currency: str = Field(description="ISO 4217 code of the balance (integer minor units)")
    phone: str | None
    address: str | None
    email_verified: bool
    created_at: datetime
    updated_at: datetime


class BalanceResponse(BaseModel):
    user_id: int
    balance: int = Field(description="Integer minor units of balance_currency")
    amount: int = Field(description="Integer minor units of balance_currency")
    balance_currency: str = Field(description="ISO 4217 code of the balance")


class VerifyResponse(BaseModel):
    email: str
    email_verified: bool


class PasswordResetRequest(_Strict):
    # Any address is accepted: whether it has an account is exactly what the answer must not say.
    email: Annotated[str, Field(min_length=1, max_length=320)]


class PasswordResetAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str = "If an account uses this address, a link to choose a new password is on its way."


class PasswordResetConfirm(_Strict):
    token: Annotated[str, Field(min_length=1, max_length=512)]
    password: Password
