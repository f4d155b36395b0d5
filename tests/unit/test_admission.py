"""Pure waiting-room rules: caps, ETA, poll spacing, phases and the keyed pre-queue permutation."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from boxoffice.waiting_room import admission


def test_inventory_cap_rounds_down_and_can_be_off() -> None:
    assert admission.inventory_cap(4, 1.5) == 6
    assert admission.inventory_cap(3, 1.5) == 4
    assert admission.inventory_cap(0, 1.5) == 0
    assert admission.inventory_cap(10, None) is None


def test_active_cap_takes_the_tighter_bound() -> None:
    assert admission.active_cap(5, 100, 1.5) == 5
    assert admission.active_cap(500, 10, 1.5) == 15
    assert admission.active_cap(None, 10, None) is None
    assert admission.active_cap(None, 10, 2.0) == 20


def test_eta_is_honest() -> None:
    assert admission.eta_seconds(100, 10.0, paused=False) == 10
    assert admission.eta_seconds(1, 10.0, paused=False) == 1
    assert admission.eta_seconds(0, 10.0, paused=False) == 0
    assert admission.eta_seconds(100, 10.0, paused=True) is None
    assert admission.eta_seconds(100, 0.0, paused=False) is None
    assert admission.eta_seconds(100, None, paused=False) is None


def test_poll_after_near_far_and_jittered() -> None:
    rng = random.Random(1)
    near = {admission.poll_after(5, rng) for _ in range(50)}
    assert all(2.0 <= p <= 3.0 for p in near) and len(near) > 1
    far = [admission.poll_after(3600, rng) for _ in range(50)]
    assert all(17 <= p <= 23 for p in far) and len(set(far)) > 1
    unknown = admission.poll_after(None, rng)
    assert 10 <= unknown <= 20


def test_phase() -> None:
    t = datetime(2030, 1, 1, tzinfo=UTC)
    kw = {
        "pre_queue_opens_at": t - timedelta(hours=1),
        "sale_opens_at": t,
        "sale_closes_at": t + timedelta(hours=1),
    }
    assert admission.phase(t - timedelta(hours=2), **kw) == "NOT_OPEN"
    assert admission.phase(t - timedelta(minutes=1), **kw) == "PRE_QUEUE"
    assert admission.phase(t, **kw) == "OPEN"
    assert admission.phase(t + timedelta(hours=1), **kw) == "CLOSED"
    assert admission.phase(t - timedelta(minutes=1), **{**kw, "pre_queue_opens_at": None}) == "NOT_OPEN"


def test_commitment_and_permutation_are_recomputable() -> None:
    seed = "ab" * 32
    assert admission.commitment(seed) == hashlib.sha256(bytes.fromhex(seed)).hexdigest()
    joins = [5, 3, 9, 3, 1]
    order = admission.prequeue_order(seed, joins)
    expected = sorted(
        {5, 3, 9, 1}, key=lambda u: hmac.new(bytes.fromhex(seed), str(u).encode(), "sha256").hexdigest()
    )
    assert order == expected


@given(st.lists(st.integers(min_value=1, max_value=10**9), max_size=60), st.binary(min_size=32, max_size=32))
def test_permutation_is_a_permutation_of_distinct_joiners(joins: list[int], seed: bytes) -> None:
    order = admission.prequeue_order(seed.hex(), joins)
    assert sorted(order) == sorted(set(joins))
    assert admission.prequeue_order(seed.hex(), list(reversed(joins))) == order  # order ignores join order


def test_different_seeds_give_different_orders() -> None:
    joins = list(range(1, 101))
    a = admission.prequeue_order("00" * 32, joins)
    b = admission.prequeue_order("01" * 32, joins)
    assert a != b and a != joins
