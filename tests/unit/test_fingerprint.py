"""An Idempotency-Key's request fingerprint (db.idempotency.fingerprint_hash) is a stored digest: a
retry that reaches a newer deploy must hash its request as the first attempt was hashed, or it is
answered IDEMPOTENCY_KEY_REUSED. The one-pass encoding gives the digests of the three-pass one
(encode, decode, encode sorted) it replaced, for every fingerprint the routes build."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from boxoffice.db.idempotency import fingerprint_hash, jsonable


def _three_passes(fingerprint: object) -> str:
    canonical = json.dumps(jsonable(fingerprint), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    "fingerprint",
    [
        {"show_id": 7, "seat_ids": [3, 1, 2]},
        {"show_id": 7, "quantity": 2, "section": "A", "price": None},
        {"show_id": 7, "quantity": 2, "section": None, "price": 50_000},
        {"reservation_id": 12, "method": "BALANCE"},
        {"amount": Decimal("10.50"), "at": datetime(2026, 12, 7, tzinfo=UTC), "note": "한글"},
        {"nested": {"b": [1, {"z": 1, "a": 2}], "a": None}},
    ],
)
def test_one_pass_gives_the_digest_of_the_three(fingerprint: object) -> None:
    assert fingerprint_hash(fingerprint) == _three_passes(fingerprint)


def test_a_different_request_gives_a_different_digest() -> None:
    assert fingerprint_hash({"show_id": 7, "seat_ids": [1, 2]}) != fingerprint_hash(
        {"show_id": 7, "seat_ids": [2, 1]}
    )
