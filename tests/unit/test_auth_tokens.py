"""Access and email-verification JWTs: only the configured algorithm, key, audience and purpose pass."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import SecretStr

from boxoffice.auth.tokens import (
    InvalidToken,
    issue_access_token,
    issue_email_verification_token,
    verify_access_token,
    verify_email_verification_token,
)
from boxoffice.config import Settings

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def cfg() -> Settings:
    return Settings(jwt_secret=SecretStr("k" * 64), queue_token_secret=SecretStr("q" * 64))


def _payload(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_round_trip_with_session(cfg: Settings) -> None:
    token, claims = issue_access_token(cfg, user_id=7, role="USER", now=NOW, session_id="fam")
    got = verify_access_token(cfg, token, now=NOW)
    assert got == claims
    assert got.session_id == "fam" and got.user_id == 7 and got.role == "USER"
    assert got.expires_at - got.issued_at == cfg.access_token_ttl_seconds
    assert set(_payload(token)) >= {"sub", "role", "jti", "iat", "exp"}


def test_expired(cfg: Settings) -> None:
    token, _ = issue_access_token(cfg, user_id=1, role="USER", now=NOW)
    verify_access_token(cfg, token, now=NOW + timedelta(seconds=cfg.access_token_ttl_seconds - 1))
    with pytest.raises(InvalidToken):
        verify_access_token(cfg, token, now=NOW + timedelta(seconds=cfg.access_token_ttl_seconds))


def test_wrong_key_alg_none_and_alg_switch(cfg: Settings) -> None:
    token, _ = issue_access_token(cfg, user_id=1, role="USER", now=NOW)
    payload = _payload(token)
    with pytest.raises(InvalidToken):
        verify_access_token(cfg, jwt.encode(payload, "another-key" * 4, algorithm="HS256"), now=NOW)
    with pytest.raises(InvalidToken):
        verify_access_token(cfg, jwt.encode(payload, None, algorithm="none"), now=NOW)
    with pytest.raises(InvalidToken):
        verify_access_token(cfg, jwt.encode(payload, "k" * 64, algorithm="HS512"), now=NOW)


def test_forged_payload(cfg: Settings) -> None:
    token, _ = issue_access_token(cfg, user_id=1, role="USER", now=NOW)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "ADMIN"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        verify_access_token(cfg, f"{header}.{forged_payload}.{signature}", now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 500])
def test_garbage(cfg: Settings, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        verify_access_token(cfg, garbage, now=NOW)


def test_missing_claims_and_unknown_role(cfg: Settings) -> None:
    base = {"sub": "1", "role": "USER", "jti": uuid.uuid4().hex, "iat": 1, "exp": 2_000_000_000}
    base |= {"aud": "boxoffice-api", "iss": "boxoffice"}
    for missing in ("sub", "role", "jti", "exp"):
        claims = {k: v for k, v in base.items() if k != missing}
        with pytest.raises(InvalidToken):
            verify_access_token(cfg, jwt.encode(claims, "k" * 64, algorithm="HS256"), now=NOW)
    with pytest.raises(InvalidToken):
        verify_access_token(cfg, jwt.encode(base | {"role": "ROOT"}, "k" * 64, algorithm="HS256"), now=NOW)


def test_verification_token_is_not_an_access_token_and_vice_versa(cfg: Settings) -> None:
    link_token = issue_email_verification_token(cfg, user_id=3, email="a@b.example", now=NOW)
    assert verify_email_verification_token(cfg, link_token, now=NOW) == (3, "a@b.example")
    with pytest.raises(InvalidToken):
        verify_access_token(cfg, link_token, now=NOW)
    access, _ = issue_access_token(cfg, user_id=3, role="USER", now=NOW)
    with pytest.raises(InvalidToken):
        verify_email_verification_token(cfg, access, now=NOW)
    with pytest.raises(InvalidToken):
        verify_email_verification_token(cfg, link_token, now=NOW + timedelta(days=2))
