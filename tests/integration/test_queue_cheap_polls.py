"""Cheap polls: a fan's signed queue ticket + the show's shared serving board give the same answers
as the per-fan Redis path, without a per-poll Redis call; the public serving resource; batched
`seen` marks keep stale-skipping honest; tickets that are not yours are refused."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx

from boxoffice.kit.clock import OffsetClock
from boxoffice.kit.localcache import LocalCache
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import service, store
from boxoffice.waiting_room.tokens import QueueTicket, issue_queue_ticket
from tests.factories import make_user
from tests.integration.test_queue_support import make_show, sell_out, tick

STATUS = "/api/queue/status"


def _q(show: dict[str, Any]) -> dict[str, int]:
    return {"concert_id": show["concert_id"], "show_id": show["id"]}


def fresh_boards(runtime: Runtime) -> None:
    """Drop this process's boards: the next poll reads the serving state now (not <= 200 ms ago)."""
    runtime.queue_boards = LocalCache(runtime.queue_boards.ttl, runtime.queue_boards.max_entries)


def _same(old: dict[str, Any], cheap: dict[str, Any]) -> None:
    """Equal answers; poll_after_seconds is jittered on every answer, so only its band is compared."""
    a, b = dict(old), dict(cheap)
    pa, pb = a.pop("poll_after_seconds"), b.pop("poll_after_seconds")
    # READY answers mint a fresh token each time; both must carry one for the same ticket.
    ta, tb = a.pop("token"), b.pop("token")
    a.pop("expires_at"), b.pop("expires_at")
    assert a == b
    assert (ta is None) == (tb is None)
    assert (pa is None) == (pb is None)
    if pa is not None:
        lo, hi = _poll_range(a["estimated_wait_seconds"])
        assert lo <= pa <= hi and lo <= pb <= hi, (pa, pb, lo, hi)


def _poll_range(eta: int | None) -> tuple[float, float]:
    """What admission.poll_after can answer for this ETA (it jitters every answer)."""
    if eta is None:
        return 11.9, 18.1
    if eta <= 15:
        return 1.9, 3.1
    base = min(20.0, max(3.0, eta / 4))
    return base * 0.85 - 0.1, base * 1.15 + 0.1


async def _both(
    client: httpx.AsyncClient, show: dict[str, Any], fan: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The per-fan answer (no ticket) and the cheap one (ticket) on the same queue state."""
    old = await client.get(STATUS, params=_q(show), headers=fan["headers"])
    assert old.status_code == 200, old.text
    ticket = old.json()["queue_ticket"] or fan.get("ticket")
    assert ticket, old.json()
    cheap = await client.get(STATUS, params=_q(show), headers={**fan["headers"], "X-Queue-Ticket": ticket})
    assert cheap.status_code == 200, cheap.text
    return old.json(), cheap.json()


async def _redis_calls(runtime: Runtime) -> int:
    stats = await runtime.redis.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


async def test_cheap_answers_equal_the_per_fan_answers_on_the_same_queue_state(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, admit_per_second=2, oversubscription=None, token_ttl=30)
    fans = [await make_user(runtime) for _ in range(14)]
    for fan in fans:
        joined = await client.post("/api/queue", json=show["body"], headers=fan["headers"])
        assert joined.status_code == 200 and joined.json()["queue_ticket"], joined.text
        fan["ticket"] = joined.json()["queue_ticket"]
        assert joined.json()["ticket_number"] == fans.index(fan) + 1

    async def compare_all() -> list[str]:
        fresh_boards(runtime)
        seen = []
        for fan in fans:
            old, cheap = await _both(client, show, fan)
            _same(old, cheap)
            seen.append(old["status"])
        return seen

    # configured rate (nothing measured yet), everybody waiting
    assert set(await compare_all()) == {"WAITING"}
    # admission moves: a measured rate, some READY (the per-fan path hands them their token)
    for _ in range(3):
        await tick(runtime, show["id"])
        clock.advance(1)
    states = await compare_all()
    assert "READY" in states and "WAITING" in states
    # one admitted fan's lease lapses: NOT_IN_QUEUE on both paths
    clock.advance(31)
    await tick(runtime, show["id"])
    assert "NOT_IN_QUEUE" in await compare_all()
    # paused: no ETA on either path
    admin = await make_user(runtime, role="ADMIN")
    r = await client.post(f"/api/admin/shows/{show['id']}/queue/pause", headers=admin["headers"])
    assert r.status_code == 200
    await tick(runtime, show["id"])
    waiting = [s for s in await compare_all() if s == "WAITING"]
    assert waiting
    # sold out (no seat left, none held)
    await sell_out(runtime, show["id"])
    await tick(runtime, show["id"])
    assert "SOLD_OUT" in await compare_all()


async def test_blocked_and_pre_queue_answers_match(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    # blocked: every remaining seat is spoken for by admitted fans
    show = await make_show(runtime, admit_per_second=100, remaining=1, oversubscription=1.0)
    fans = [await make_user(runtime) for _ in range(3)]
    for fan in fans:
        fan["ticket"] = (await client.post("/api/queue", json=show["body"], headers=fan["headers"])).json()[
            "queue_ticket"
        ]
    clock.advance(1)
    await tick(runtime, show["id"])
    fresh_boards(runtime)
    old, cheap = await _both(client, show, fans[2])
    assert old["status"] == "WAITING" and old["estimate_basis"] == "unknown"
    _same(old, cheap)

    # pre-queue: provisional slots (number 0) answered from the board until the draw
    pre = await make_show(runtime, opens_in=30, pre_queue_in=-30)
    fan = await make_user(runtime)
    joined = (await client.post("/api/queue", json=pre["body"], headers=fan["headers"])).json()
    assert joined["pre_queue"] and joined["ticket_number"] == 0
    fan["ticket"] = joined["queue_ticket"]
    fresh_boards(runtime)
    old, cheap = await _both(client, pre, fan)
    assert old["estimate_basis"] == "sale_start"
    _same(old, cheap)
    # after the draw the provisional ticket takes the per-fan path once and gets its real number
    clock.advance(31)
    await tick(runtime, pre["id"])
    fresh_boards(runtime)
    drawn = await client.get(
        STATUS, params=_q(pre), headers={**fan["headers"], "X-Queue-Ticket": fan["ticket"]}
    )
    body = drawn.json()
    assert body["pre_queue"] is False and body["ticket_number"] == 1 and body["queue_ticket"] != fan["ticket"]


async def test_cheap_polls_make_no_per_poll_redis_call(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime, admit_per_second=1)
    fans = [await make_user(runtime) for _ in range(5)]
    tickets = []
    for fan in fans:
        tickets.append((await client.post("/api/queue", json=show["body"], headers=fan["headers"])).json())
    await client.get(  # warm this process's board
        STATUS, params=_q(show), headers={**fans[0]["headers"], "X-Queue-Ticket": tickets[0]["queue_ticket"]}
    )
    runtime.queue_boards.ttl = 60.0  # one board read for the whole test: count the rest exactly
    try:
        await service.flush_seen(runtime)
        before = await _redis_calls(runtime)
        started = time.monotonic()
        for _ in range(40):
            for fan, joined in zip(fans, tickets, strict=True):
                headers = {**fan["headers"], "X-Queue-Ticket": joined["queue_ticket"]}
                r = await client.get(STATUS, params=_q(show), headers=headers)
                assert r.status_code == 200 and r.json()["position"] == joined["position"]
        seconds = math.ceil(time.monotonic() - started)
        after = await _redis_calls(runtime)
    finally:
        runtime.queue_boards.ttl = 0.2
    # 200 polls: besides the INFO call itself, one board read (the warm-up's entry had the short
    # TTL), and per started second at most one batched `seen` flush and one deny-list check per fan
    # (a second's answer is reused); nothing per poll.
    calls = after - before - 1
    assert calls <= 1 + (seconds + 1) * (1 + len(fans)), (calls, seconds)
    assert calls < 200 // 4, calls


async def test_seen_marks_are_batched_and_keep_a_polling_fan_in_line(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, admit_per_second=10)
    poller, ghost = await make_user(runtime), await make_user(runtime)
    ghost_join = (await client.post("/api/queue", json=show["body"], headers=ghost["headers"])).json()
    joined = (await client.post("/api/queue", json=show["body"], headers=poller["headers"])).json()
    clock.advance(170)
    fresh_boards(runtime)
    r = await client.get(
        STATUS, params=_q(show), headers={**poller["headers"], "X-Queue-Ticket": joined["queue_ticket"]}
    )
    assert r.json()["status"] == "WAITING"
    await service.flush_seen(runtime)
    clock.advance(20)  # 190 s after both joined: the ghost is stale, the poller was seen 20 s ago
    result = await tick(runtime, show["id"])
    assert result.admitted_users == [poller["id"]] and result.stale == 1
    # the ghost's ticket is served (skipped): the per-fan path says so
    fresh_boards(runtime)
    gone = await client.get(
        STATUS, params=_q(show), headers={**ghost["headers"], "X-Queue-Ticket": ghost_join["queue_ticket"]}
    )
    assert gone.json()["status"] == "NOT_IN_QUEUE"


async def test_a_ticket_whose_place_is_gone_falls_back_after_the_batch(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime, admit_per_second=1)
    first, fan = await make_user(runtime), await make_user(runtime)
    await client.post("/api/queue", json=show["body"], headers=first["headers"])
    joined = (await client.post("/api/queue", json=show["body"], headers=fan["headers"])).json()
    headers = {**fan["headers"], "X-Queue-Ticket": joined["queue_ticket"]}
    assert (await client.delete("/api/queue", params=_q(show), headers=fan["headers"])).status_code == 204
    # until this process's next batch the ticket alone cannot know (documented): WAITING
    assert (await client.get(STATUS, params=_q(show), headers=headers)).json()["status"] == "WAITING"
    await service.flush_seen(runtime)
    after = (await client.get(STATUS, params=_q(show), headers=headers)).json()
    assert after["status"] == "NOT_IN_QUEUE"
    # re-joining gives a new number; the old ticket keeps taking the per-fan path (the true answer)
    again = (await client.post("/api/queue", json=show["body"], headers=fan["headers"])).json()
    assert again["ticket_number"] == 3
    moved = (await client.get(STATUS, params=_q(show), headers=headers)).json()
    assert moved["ticket_number"] == 3 and moved["position"] == again["position"]


async def test_bad_and_foreign_tickets_are_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime)
    other_show = await make_show(runtime)
    fan, other = await make_user(runtime), await make_user(runtime)
    mine = (await client.post("/api/queue", json=show["body"], headers=fan["headers"])).json()["queue_ticket"]
    for bad in ("nonsense", mine[:-2] + "xx", mine.replace(".1.", ".2.", 1), "v1.1.1.1." + "A" * 24):
        r = await client.get(STATUS, params=_q(show), headers={**fan["headers"], "X-Queue-Ticket": bad})
        assert r.status_code == 400 and r.json()["code"] == "QUEUE_TICKET_INVALID", (bad, r.text)
    r = await client.get(STATUS, params=_q(show), headers={**other["headers"], "X-Queue-Ticket": mine})
    assert r.status_code == 403 and r.json()["code"] == "QUEUE_TICKET_MISMATCH"
    r = await client.get(STATUS, params=_q(other_show), headers={**fan["headers"], "X-Queue-Ticket": mine})
    assert r.status_code == 403 and r.json()["code"] == "QUEUE_TICKET_MISMATCH"
    r = await client.get(STATUS, params=_q(show), headers={**fan["headers"], "X-Queue-Ticket": "x" * 161})
    assert r.status_code == 422
    forged = issue_queue_ticket(
        runtime.settings.model_copy(update={"queue_token_secret": runtime.settings.jwt_secret}),
        QueueTicket(show_id=show["id"], user_id=fan["id"], number=1),
    )
    r = await client.get(STATUS, params=_q(show), headers={**fan["headers"], "X-Queue-Ticket": forged})
    assert r.status_code == 400 and r.json()["code"] == "QUEUE_TICKET_INVALID"


async def test_the_public_serving_resource_is_cacheable_with_an_etag(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, admit_per_second=2)
    fans = [await make_user(runtime) for _ in range(4)]
    for fan in fans:
        await client.post("/api/queue", json=show["body"], headers=fan["headers"])
    url = f"/api/shows/{show['id']}/queue/serving"
    fresh_boards(runtime)
    first = await client.get(url)  # no login: it is public
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "public, max-age=1"
    etag = first.headers["etag"]
    body = first.json()
    assert body["serving"] == 0 and body["last_ticket"] == 4 and body["sale_state"] == "OPEN"
    assert body["show_id"] == show["id"] and body["concert_id"] == show["concert_id"]
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert (await client.get(url, headers={"If-None-Match": f'W/{etag}, "other"'})).status_code == 304
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    for _ in range(2):
        await tick(runtime, show["id"])
        clock.advance(1)
    fresh_boards(runtime)
    moved = await client.get(url, headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["etag"] != etag and moved.json()["serving"] >= 1
    # the waiting fans' answers are ticket_number - serving of exactly this resource
    last = fans[-1]
    status = (await client.get(STATUS, params=_q(show), headers=last["headers"])).json()
    assert status["position"] == status["ticket_number"] - moved.json()["serving"]

    assert (await client.get("/api/shows/999999/queue/serving")).json()["code"] == "SHOW_NOT_FOUND"
    assert (await client.get("/api/shows/0/queue/serving")).status_code == 422
    assert (await client.get(f"/api/shows/{2**63}/queue/serving")).status_code == 422
    doc = (await client.get("/openapi.json")).json()
    assert "/api/shows/{show_id}/queue/serving" in doc["paths"]
    assert await store.tracked_shows(runtime.redis) == [show["id"]]


async def test_a_logout_reaches_ticket_polls_within_a_second_and_other_routes_at_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime)
    fan = await make_user(runtime)
    joined = (await client.post("/api/queue", json=show["body"], headers=fan["headers"])).json()
    headers = {**fan["headers"], "X-Queue-Ticket": joined["queue_ticket"]}
    assert (await client.get(STATUS, params=_q(show), headers=headers)).status_code == 200
    assert (await client.post("/api/auth/logout", headers=fan["headers"])).status_code == 204
    assert (await client.get(STATUS, params=_q(show), headers=fan["headers"])).status_code == 401
    deadline = time.monotonic() + 10
    while (await client.get(STATUS, params=_q(show), headers=headers)).status_code != 401:
        assert time.monotonic() < deadline, "a logged-out token kept polling"
        await asyncio.sleep(0.1)
    # and it stays refused
    assert (await client.get(STATUS, params=_q(show), headers=headers)).status_code == 401


async def test_lean_routes_are_named_in_the_latency_metrics(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime)
    fan = await make_user(runtime)
    await client.post("/api/queue", json=show["body"], headers=fan["headers"])
    await client.get(STATUS, params=_q(show), headers=fan["headers"])
    await client.get(f"/api/shows/{show['id']}/queue/serving")
    text = (await client.get("/metrics")).text
    for method, route in (
        ("POST", "/api/queue"),
        ("GET", "/api/queue/status"),
        ("GET", "/api/shows/{show_id}/queue/serving"),
    ):
        assert f'boxoffice_http_requests_total{{method="{method}",route="{route}",status="200"}}' in text, (
            route
        )
