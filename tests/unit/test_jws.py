"""kit.jws: the fast path accepts exactly the tokens PyJWT accepts with the same key and
algorithm, in the shape we issue; for anything else it defers (None) and PyJWT decides."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from boxoffice.kit.jws import hmac_payload

KEY = "k" * 64  # long enough for HS512 (RFC 7518 3.2)
CLAIMS = {"sub": "7", "aud": "boxoffice-api", "iss": "boxoffice", "jti": "abc", "iat": 1, "exp": 2**40}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_our_tokens_pass_with_their_payload(algorithm: str) -> None:
    token = jwt.encode(CLAIMS, KEY, algorithm=algorithm)
    assert hmac_payload(token, KEY, algorithm) == CLAIMS
    assert hmac_payload(token, KEY + "x", algorithm) is None  # another key
    other = "HS512" if algorithm != "HS512" else "HS256"
    assert hmac_payload(token, KEY, other) is None  # no algorithm switching


def test_anything_else_is_left_to_pyjwt() -> None:
    token = jwt.encode(CLAIMS, KEY, algorithm="HS256")
    head, body, sig = token.split(".")
    tampered = _b64(json.dumps({**CLAIMS, "sub": "8"}).encode())
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    cases = [
        f"{head}.{tampered}.{sig}",  # the payload changed, the signature did not
        f"{none_header}.{body}.",  # alg none
        f"{none_header}.{body}.{sig}",
        f"{head}.{body}.{sig}!!",  # junk after the signature (base64 would skip it)
        f"{head}.{body}.{sig[:10]}*{sig[10:]}",
        jwt.encode(CLAIMS, KEY, algorithm="HS256", headers={"kid": "1"}),  # another header
        jwt.encode({**CLAIMS, "sub": 7}, KEY, algorithm="HS256"),  # PyJWT refuses a number as sub
        f"{head}.{body}",  # two segments
        f"{head}.{body}.{sig}.x",
        f"{head}.!!!.{sig}",  # not base64
        "",
    ]
    for case in cases:
        assert hmac_payload(case, KEY, "HS256") is None, case
    assert hmac_payload(token, KEY, "RS256") is None  # only HMAC algorithms
