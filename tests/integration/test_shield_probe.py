"""The shield's probe (booking.shield.Probe): a hold's first Redis round reads the named seats'
marks, so a hold of seats another fan holds is refused without MARK's round trip. The probe must
say "taken" exactly when MARK would, on real Redis, for every kind of mark."""

from __future__ import annotations

import uuid
from datetime import timedelta

from boxoffice.booking import shield
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated
from tests.integration.test_tracing import PARENT_ID, TRACE_ID, server_timing, traced

OWNER, OTHER = 7, 8
SHOW = 990_001


async def test_the_probe_says_taken_exactly_when_mark_does(runtime: Runtime) -> None:
    now = runtime.clock.now()
    now_ms = int(now.timestamp() * 1000)
    # Every kind of mark a seat can carry, by the fan asking (OWNER) or by another (OTHER).
    marks = {
        "free": None,
        "other's live hold": f"{OTHER}:{now_ms + 60_000}",
        "other's dead hold": f"{OTHER}:{now_ms - 1}",
        "other's sale": f"{OTHER}:S",
        "other's cool-down": f"{OTHER}:C{now_ms + 60_000}",
        "own live hold": f"{OWNER}:{now_ms + 60_000}",
        "own dead hold, cooling": f"{OWNER}:{now_ms - 1}",
        "own dead hold, cooled": f"{OWNER}:{now_ms - 600_000}",
        "own sale": f"{OWNER}:S",
        "own cool-down": f"{OWNER}:C{now_ms + 60_000}",
        "own cool-down, over": f"{OWNER}:C{now_ms - 1}",
    }
    answers: dict[str, list[int] | None] = {}
    for seat, (kind, mark) in enumerate(marks.items(), start=1):
        key = shield.seat_key(SHOW, seat)
        await runtime.redis.delete(key)
        if mark is not None:
            await runtime.redis.set(key, mark, px=600_000)
        probed = await shield.Probe(runtime.hot_redis, SHOW, OWNER, [seat], now)
        verdict = await shield.try_mark(
            runtime.hot_redis,
            SHOW,
            OWNER,
            [seat],
            now=now,
            expires_at=now + timedelta(minutes=5),
            ttl_ms=60_000,
            cool_seconds=60,
        )
        assert probed == verdict.taken, (kind, probed, verdict)
        answers[kind] = probed
    assert [k for k, v in answers.items() if v] == ["other's live hold", "other's sale"]
    # Several seats: the taken ones, sorted, whatever order they were asked in.
    taken = await shield.Probe(runtime.hot_redis, SHOW, OWNER, [4, 1, 2], now)
    assert taken == [2, 4]
    # A mark it cannot read says nothing (MARK decides, as it does when Redis does not answer).
    await runtime.redis.set(shield.seat_key(SHOW, 1), "garbled", px=600_000)
    assert await shield.Probe(runtime.hot_redis, SHOW, OWNER, [1, 2], now) is None


async def test_a_hold_of_held_seats_waits_for_redis_once(settings, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    """Through the API, traced: the refusal names the same seats as before and is answered after
    the first round's one wait; a winning hold still marks (a second wait) and then writes."""
    async with traced(settings, runtime, trace_breakdown=True) as (client, own):
        show = await make_show(own, seats=4)
        first, second = await make_user(own), await make_user(own)
        seats = show["seat_ids"]
        sampled = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}

        async def hold(user: dict[str, object], wanted: list[int]):  # type: ignore[no-untyped-def]
            return await client.post(
                "/api/reservations",
                json={"show_id": show["show_id"], "seat_ids": wanted},
                headers={**gated(own, user, show["show_id"], uuid.uuid4().hex), **sampled},
            )

        won = await hold(first, [seats[0]])
        assert won.status_code == 201, won.text
        assert int(str(server_timing(won.headers["server-timing"])["redis_calls"])) >= 2
        refused = await hold(second, [seats[1], seats[0]])
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "SEATS_TAKEN" and refused.json()["seat_ids"] == [seats[0]]
        assert int(str(server_timing(refused.headers["server-timing"])["redis_calls"])) == 1
        # Nothing was marked for the refused fan: a third fan takes the free seat at once.
        third = await make_user(own)
        assert (await hold(third, [seats[1]])).status_code == 201
