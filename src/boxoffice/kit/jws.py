"""A fast path for verifying our own HMAC-signed JWTs (access and admission tokens) on hot routes.

PyJWT's decode is general (any algorithm, headers, options) and cost ~0.1 ms per token on the
bench box; a token of exactly the shape we issue needs one HMAC and two base64/JSON decodes. The
fast path answers only for that shape: a header that is exactly {"alg": <the configured HMAC
algorithm>, "typ": "JWT"}, a signature that matches (constant-time compare), a JSON object as
payload. Anything else (another header, a bad signature, bad base64) returns None and the caller
hands the token to PyJWT, which decides and names the error: the fast path can only accept what
PyJWT would accept with the same key and algorithm; the claim checks stay with the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _decode(segment: str) -> bytes:
    # Strict: base64's default decoder skips characters outside the alphabet, so a signature with
    # junk appended would still match; such a token is left to PyJWT to refuse.
    return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)


def hmac_payload(token: str, key: str, algorithm: str) -> dict[str, Any] | None:
    """The payload of `token` when it is a plain compact JWS signed with `algorithm` under `key`;
    None when the fast path cannot say (the caller asks PyJWT)."""
    digest = _HASHES.get(algorithm)
    if digest is None or token.count(".") != 2:
        return None
    head, body, signature = token.split(".")
    try:
        header = json.loads(_decode(head))
        if header != {"alg": algorithm, "typ": "JWT"}:
            return None
        expected = hmac.new(key.encode(), f"{head}.{body}".encode("ascii"), digest).digest()
        if not hmac.compare_digest(expected, _decode(signature)):
            return None
        payload = json.loads(_decode(body))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    if not isinstance(payload, dict):
        return None
    # PyJWT refuses a `sub` or `jti` that is not a string: so does the fast path (it defers).
    if any(claim in payload and not isinstance(payload[claim], str) for claim in ("sub", "jti")):
        return None
    return payload
