"""The toll's pure rules: ALTCHA's challenge and payload, the O(1) check and each refusal, the
crowd factor."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from boxoffice.waiting_room import toll

KEY = toll.toll_key("q" * 64)
NOW = 1_800_000_000


def _issued(maxnumber: int = 500, user_id: int = 7, show_id: int = 3) -> toll.Challenge:
    return toll.issue(KEY, user_id=user_id, show_id=show_id, maxnumber=maxnumber, now_s=NOW)


def _solved(challenge: toll.Challenge) -> str:
    number = toll.solve(challenge)
    assert number is not None
    return toll.payload(challenge, number)


def _refusal(raw: str | None, **kw: int) -> str:
    args = {"user_id": 7, "show_id": 3, "now_s": NOW + 1, **kw}
    with pytest.raises(toll.TollRefused) as refused:
        toll.verify(KEY, raw, **args)  # type: ignore[arg-type]
    return refused.value.reason


def test_the_challenge_is_altchas_and_any_altcha_solver_can_check_it() -> None:
    c = _issued()
    assert c.algorithm == "SHA-256" and c.maxnumber == 500
    assert c.salt.endswith("&") and "expires=" in c.salt and "&show=3&user=7&" in c.salt
    # ALTCHA v1: challenge = hex sha256(salt + number), signature = hex hmac-sha256(key, challenge)
    number = toll.solve(c)
    assert number is not None and 0 <= number <= 500
    assert hashlib.sha256(f"{c.salt}{number}".encode()).hexdigest() == c.challenge
    assert hmac.new(KEY, c.challenge.encode(), hashlib.sha256).hexdigest() == c.signature
    decoded = json.loads(base64.b64decode(toll.payload(c, number)))
    assert decoded == {
        "algorithm": "SHA-256",
        "challenge": c.challenge,
        "number": number,
        "salt": c.salt,
        "signature": c.signature,
    }
    solved = toll.verify(KEY, toll.payload(c, number), user_id=7, show_id=3, now_s=NOW + 1)
    assert solved.challenge == c.challenge and solved.expires == NOW + toll.CHALLENGE_TTL_SECONDS


def test_each_way_to_fail_has_its_reason() -> None:
    c = _issued()
    good = _solved(c)
    assert _refusal(None) == "required" and _refusal("  ") == "required"
    assert _refusal("not base64 at all!") == "invalid"
    assert _refusal(base64.b64encode(b"[1, 2]").decode()) == "invalid"
    assert _refusal("A" * (toll.PAYLOAD_MAX + 4)) == "invalid"
    data = json.loads(base64.b64decode(good))
    wrong = {**data, "number": (data["number"] + 1) % 501}
    assert _refusal(base64.b64encode(json.dumps(wrong).encode()).decode()) == "invalid"
    forged = {**data, "signature": "0" * 64}
    assert _refusal(base64.b64encode(json.dumps(forged).encode()).decode()) == "invalid"
    other_alg = {**data, "algorithm": "SHA-1"}
    assert _refusal(base64.b64encode(json.dumps(other_alg).encode()).decode()) == "invalid"
    as_text = {**data, "number": str(data["number"])}
    assert _refusal(base64.b64encode(json.dumps(as_text).encode()).decode()) == "invalid"
    assert _refusal(good, show_id=4) == "foreign"
    assert _refusal(good, user_id=8) == "foreign"
    assert _refusal(good, now_s=NOW + toll.CHALLENGE_TTL_SECONDS) == "expired"
    # another deployment's key: not ours
    with pytest.raises(toll.TollRefused) as theirs:
        toll.verify(toll.toll_key("x" * 64), good, user_id=7, show_id=3, now_s=NOW)
    assert theirs.value.reason == "invalid"


def test_the_bound_parameters_cannot_be_edited_or_spliced() -> None:
    c = _issued(maxnumber=50)
    number = toll.solve(c)
    assert number is not None
    # A later expiry in the salt changes the hash: the number no longer solves it.
    later = c.salt.replace(f"expires={NOW + 300}", f"expires={NOW + 99999}")
    edited = {**toll._as_dict(c), "salt": later}
    assert _refusal(toll.payload(edited, number), now_s=NOW + 400) == "invalid"
    # Moving the number's digits into the salt keeps the hash, but the salt must end with "&".
    while number < 10:
        c = _issued(maxnumber=50)
        number = toll.solve(c)
        assert number is not None
    spliced = {**toll._as_dict(c), "salt": c.salt + str(number)[:-1]}
    raw = toll.payload(spliced, int(str(number)[-1]))
    assert _refusal(raw) == "invalid"


def test_difficulty_off_stays_off_and_rises_with_the_crowd_within_bounds() -> None:
    assert toll.effective_maxnumber(0, 10.0) == 0
    assert toll.crowd_factor(None, None, 10) == 1.0
    assert toll.crowd_factor(5, 20, 10) == 1.0  # fewer joins than admissions: the base
    assert toll.crowd_factor(100, 20, 10) == 5.0  # five times faster than the line moves
    assert toll.crowd_factor(100, None, 10) == 10.0  # nothing measured yet: the configured pace
    assert toll.crowd_factor(1e9, 1, 1) == toll.MAX_CROWD_FACTOR
    assert toll.effective_maxnumber(100_000, 5.0) == 500_000
    assert toll.effective_maxnumber(5_000_000, 10.0) == toll.MAXNUMBER_LIMIT
    assert _issued(maxnumber=0).maxnumber == 0 and toll.solve(_issued(maxnumber=0)) == 0
