"""The toll at the queue's door: proof of work in ALTCHA's wire format (pure, no I/O).

A challenge (https://altcha.org/docs/v2/server-integration, protocol v1, algorithm SHA-256):

    salt       = <24 random hex>?expires=<unix s>&show=<show id>&user=<user id>&
    number     = a secret random integer in [0, maxnumber]
    challenge  = hex(SHA-256(salt + str(number)))
    signature  = hex(HMAC-SHA-256(key, challenge))

The client tries n = 0, 1, 2, ... until hex(SHA-256(salt + str(n))) == challenge (maxnumber / 2
tries on average) and sends back base64(JSON {algorithm, challenge, number, salt, signature}), the
payload every ALTCHA client produces. The server checks it with one HMAC and one SHA-256 (O(1)):
the signature proves it issued the challenge; the hash proves the work; the salt's parameters are
covered by the challenge (changing them changes the hash), so user, show and expiry are bound to
it. The salt ends with "&" so no digit of the number can be moved into a parameter (the splicing
trick against `expires`). Single use is the store's business (a Redis SET NX per challenge).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl

ALGORITHM = "SHA-256"
# How long a challenge may be solved and spent. A phone solves in about a second; a page left open
# fetches a new one (the widget refetches on expiry).
CHALLENGE_TTL_SECONDS = 300
# The largest payload we read (a real one is ~300 characters).
PAYLOAD_MAX = 1024
MAXNUMBER_LIMIT = 10_000_000
# Difficulty rises with the crowd: base x (join rate / admission rate), between 1x and this.
MAX_CROWD_FACTOR = 10.0
# Time constant of the measured join rate (EWMA, like the admission rate's).
JOIN_RATE_TAU_SECONDS = 10.0
_LABEL = b"boxoffice-queue-toll-v1"


class TollRefused(Exception):
    """Why a solution was refused: `reason` is one of required, invalid, expired, foreign."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Challenge:
    algorithm: str
    challenge: str
    maxnumber: int
    salt: str
    signature: str


@dataclass(frozen=True, slots=True)
class Solved:
    """A verified solution: `challenge` names it for the single-use claim until `expires` (unix s)."""

    challenge: str
    expires: int


@functools.lru_cache(maxsize=8)
def toll_key(queue_secret: str) -> bytes:
    """Derived from the queue-token secret under its own label (every process of a deployment
    shares that secret already): a challenge signature is never a valid token or ticket."""
    return hmac.new(queue_secret.encode(), _LABEL, hashlib.sha256).digest()


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sign(key: bytes, challenge: str) -> str:
    return hmac.new(key, challenge.encode(), hashlib.sha256).hexdigest()


def issue(key: bytes, *, user_id: int, show_id: int, maxnumber: int, now_s: int) -> Challenge:
    maxnumber = max(0, min(int(maxnumber), MAXNUMBER_LIMIT))
    expires = now_s + CHALLENGE_TTL_SECONDS
    salt = f"{secrets.token_hex(12)}?expires={expires}&show={show_id}&user={user_id}&"
    number = secrets.randbelow(maxnumber + 1)
    challenge = _sha256_hex(salt + str(number))
    return Challenge(ALGORITHM, challenge, maxnumber, salt, _sign(key, challenge))


def solve(challenge: Challenge | dict[str, object], start: int = 0) -> int | None:
    """The client's side, for tests and the bench: the number, or None if none up to maxnumber."""
    data = challenge if isinstance(challenge, dict) else _as_dict(challenge)
    salt, target, top = str(data["salt"]), str(data["challenge"]), int(str(data["maxnumber"]))
    for n in range(start, top + 1):
        if _sha256_hex(salt + str(n)) == target:
            return n
    return None


def _as_dict(challenge: Challenge) -> dict[str, object]:
    return {
        "algorithm": challenge.algorithm,
        "challenge": challenge.challenge,
        "maxnumber": challenge.maxnumber,
        "salt": challenge.salt,
        "signature": challenge.signature,
    }


def payload(challenge: Challenge | dict[str, object], number: int) -> str:
    """ALTCHA's solution payload: base64 of the JSON the widget posts."""
    data = challenge if isinstance(challenge, dict) else _as_dict(challenge)
    body = {
        "algorithm": data["algorithm"],
        "challenge": data["challenge"],
        "number": number,
        "salt": data["salt"],
        "signature": data["signature"],
    }
    return base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def verify(key: bytes, raw: str | None, *, user_id: int, show_id: int, now_s: int) -> Solved:
    """O(1): one HMAC and one SHA-256. Raises TollRefused (required / invalid / foreign / expired)."""
    if raw is None or not raw.strip():
        raise TollRefused("required", "Solve the queue's challenge first (send it in X-Altcha)")
    if len(raw) > PAYLOAD_MAX:
        raise TollRefused("invalid", "The challenge solution is not one we can read")
    try:
        data = json.loads(base64.b64decode(raw.strip(), validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TollRefused("invalid", "The challenge solution is not one we can read") from None
    if not isinstance(data, dict):
        raise TollRefused("invalid", "The challenge solution is not one we can read")
    algorithm, challenge, number = data.get("algorithm"), data.get("challenge"), data.get("number")
    salt, signature = data.get("salt"), data.get("signature")
    if (
        algorithm != ALGORITHM
        or not isinstance(challenge, str)
        or not isinstance(salt, str)
        or not isinstance(signature, str)
        or not isinstance(number, int)
        or isinstance(number, bool)
        or not 0 <= number <= MAXNUMBER_LIMIT
    ):
        raise TollRefused("invalid", "The challenge solution is not one we can read")
    if not hmac.compare_digest(signature.encode(), _sign(key, challenge).encode()):
        raise TollRefused("invalid", "This challenge was not issued by us")
    if not hmac.compare_digest(challenge.encode(), _sha256_hex(salt + str(number)).encode()):
        raise TollRefused("invalid", "The challenge is not solved: the number is wrong")
    params = _salt_params(salt)
    if params is None:
        raise TollRefused("invalid", "The challenge solution is not one we can read")
    expires, for_show, for_user = params
    if for_show != show_id or for_user != user_id:
        raise TollRefused("foreign", "This challenge was issued for another show or another account")
    if expires <= now_s:
        raise TollRefused("expired", "This challenge has expired; fetch a new one and solve it")
    return Solved(challenge=challenge, expires=expires)


def _salt_params(salt: str) -> tuple[int, int, int] | None:
    _, sep, query = salt.partition("?")
    if not sep or not query.endswith("&"):
        return None
    params = dict(parse_qsl(query, strict_parsing=False))
    try:
        return int(params["expires"]), int(params["show"]), int(params["user"])
    except (KeyError, ValueError):
        return None


# ---------------------------------------------------------------------------- difficulty


def crowd_factor(join_rate: float | None, admission_rate: float | None, admit_per_second: float) -> float:
    """How much harder than the show's base the toll is: the join rate against the rate the line
    moves (measured, else configured), between 1 and MAX_CROWD_FACTOR. A crowd joining ten times
    faster than it is let in pays up to ten times the work per place."""
    if not join_rate or join_rate <= 0:
        return 1.0
    pace = max(admission_rate or 0.0, admit_per_second, 1.0)
    ratio = join_rate / pace
    if not math.isfinite(ratio):
        return MAX_CROWD_FACTOR
    return max(1.0, min(MAX_CROWD_FACTOR, ratio))


def effective_maxnumber(base: int, factor: float) -> int:
    """0 stays 0 (the toll is off); otherwise the base scaled by the crowd factor, bounded."""
    if base <= 0:
        return 0
    return min(MAXNUMBER_LIMIT, max(1, round(base * max(1.0, factor))))
