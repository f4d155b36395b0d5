"""Waiting room over HTTP with real PostgreSQL + Redis: join/status/leave, admission order,
inventory-aware caps, leases, stale waiters, admin controls, errors."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import service, store
from boxoffice.worker import all_jobs
from tests.factories import make_user
from tests.integration.test_queue_support import make_show, sell_out, set_remaining, tick
from tests.integration.test_tracing import PARENT_ID, TRACE_ID, server_timing, traced


def _q(show: dict[str, Any]) -> dict[str, int]:
    return {"concert_id": show["concert_id"], "show_id": show["id"]}


async def test_join_twice_keeps_place_status_and_leave(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime)
    a, b = await make_user(runtime), await make_user(runtime)
    first = await client.post("/api/queue", json=show["body"], headers=a["headers"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "WAITING" and body["position"] == 1 and body["user_id"] == a["id"]
    assert body["estimated_wait_seconds"] is not None and body["estimate_basis"] == "configured"
    assert 2 <= body["poll_after_seconds"] <= 3
    again = (await client.post("/api/queue", json=show["body"], headers=a["headers"])).json()
    assert again["position"] == 1
    second = (await client.post("/api/queue", json=show["body"], headers=b["headers"])).json()
    assert second["position"] == 2

    status = await client.get("/api/queue/status", params=_q(show), headers=b["headers"])
    assert status.status_code == 200 and status.json()["position"] == 2 and status.json()["token"] is None

    assert (await client.delete("/api/queue", params=_q(show), headers=a["headers"])).status_code == 204
    assert (await client.delete("/api/queue", params=_q(show), headers=a["headers"])).status_code == 204
    gone = (await client.get("/api/queue/status", params=_q(show), headers=a["headers"])).json()
    assert (
        gone["status"] == "NOT_IN_QUEUE" and gone["position"] is None and gone["poll_after_seconds"] is None
    )
    # b's position counts the hole a left until admission walks past it
    await tick(runtime, show["id"])
    ready = (await client.get("/api/queue/status", params=_q(show), headers=b["headers"])).json()
    assert ready["status"] == "READY" and ready["token"] and ready["expires_at"]
    tok = await client.post("/api/reservations/token", json=show["body"], headers=b["headers"])
    assert tok.status_code == 200 and tok.json()["status"] == "READY" and tok.json()["token"]
    assert set(tok.json()) == {"status", "position", "token", "expires_at"}


async def test_users_are_admitted_in_join_order(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, admit_per_second=4)
    users = [await make_user(runtime) for _ in range(12)]
    for u in users:
        assert (await client.post("/api/queue", json=show["body"], headers=u["headers"])).status_code == 200
    served: list[int] = []
    for _ in range(20):
        result = await tick(runtime, show["id"])
        served.extend(result.admitted_users)
        clock.advance(0.5)
        if len(served) == len(users):
            break
    assert served == [u["id"] for u in users]
    assert runtime.metrics.queue_admissions._value.get() >= 12  # type: ignore[attr-defined]
    stats = await client.get("/metrics")
    assert "boxoffice_queue_joins_total" in stats.text


async def test_errors_unknown_show_wrong_concert_window_and_input(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await make_user(runtime)
    h = user["headers"]
    show = await make_show(runtime)
    r = await client.post("/api/queue", json={"concert_id": show["concert_id"], "show_id": 999999}, headers=h)
    assert r.status_code == 404 and r.json()["code"] == "SHOW_NOT_FOUND"
    r = await client.post(
        "/api/queue", json={"concert_id": show["concert_id"] + 1, "show_id": show["id"]}, headers=h
    )
    assert r.status_code == 404
    r = await client.get("/api/queue/status", params={"concert_id": 1, "show_id": 999999}, headers=h)
    assert r.status_code == 404

    early = await make_show(runtime, opens_in=3600, closes_in=7200)
    r = await client.post("/api/queue", json=early["body"], headers=h)
    assert r.status_code == 409 and r.json()["code"] == "SALE_NOT_OPEN" and r.json()["opens_at"]
    closed = await make_show(runtime, opens_in=-7200, closes_in=-60)
    r = await client.post("/api/queue", json=closed["body"], headers=h)
    assert r.status_code == 409 and r.json()["code"] == "SALE_CLOSED"
    sold = await make_show(runtime)
    await sell_out(runtime, sold["id"])
    r = await client.post("/api/queue", json=sold["body"], headers=h)
    assert r.status_code == 409 and r.json()["code"] == "SOLD_OUT"

    for bad in (
        {"concert_id": 1},
        {"concert_id": "x", "show_id": 1},
        {"concert_id": 1, "show_id": 0},
        {"concert_id": 1, "show_id": 1, "extra": 1},
    ):
        r = await client.post("/api/queue", json=bad, headers=h)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad
        assert r.json()["errors"][0]["loc"][0] == "body"
    r = await client.get("/api/queue/status", params={"concert_id": 1}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "show_id"]
    r = await client.post("/api/queue", json=show["body"])
    assert r.status_code == 401


async def test_admission_stops_at_remaining_times_oversubscription_and_resumes(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, seats=20, remaining=4, oversubscription=1.5, admit_per_second=100)
    users = [await make_user(runtime) for _ in range(15)]
    for u in users:
        await client.post("/api/queue", json=show["body"], headers=u["headers"])
    for _ in range(3):
        await tick(runtime, show["id"])
        clock.advance(1)
    assert len(await store.active_users(runtime.redis, show["id"])) == 6  # floor(4 x 1.5)
    waiting = (await client.get("/api/queue/status", params=_q(show), headers=users[6]["headers"])).json()
    assert waiting["status"] == "WAITING" and waiting["position"] == 1
    # admission is blocked by the inventory: the ETA says "unknown" instead of guessing
    for _ in range(40):
        await tick(runtime, show["id"])
        clock.advance(1)
    stalled = (await client.get("/api/queue/status", params=_q(show), headers=users[-1]["headers"])).json()
    assert stalled["estimated_wait_seconds"] is None and stalled["estimate_basis"] == "unknown"

    await set_remaining(runtime, show["id"], 8)  # seats came back (holds expired)
    await tick(runtime, show["id"])
    assert len(await store.active_users(runtime.redis, show["id"])) == 12
    # a paid lease frees room too
    await service.issue_release_lease(runtime.hot_redis, show["id"], users[0]["id"])
    clock.advance(1)
    await tick(runtime, show["id"])
    active = await store.active_users(runtime.redis, show["id"])
    assert len(active) == 12 and users[12]["id"] in active

    await sell_out(runtime, show["id"])
    clock.advance(1)
    await tick(runtime, show["id"])
    sold = (await client.get("/api/queue/status", params=_q(show), headers=users[-1]["headers"])).json()
    assert sold["status"] == "SOLD_OUT" and sold["poll_after_seconds"] is None
    assert len(await store.active_users(runtime.redis, show["id"])) == 12


async def test_lease_expiry_is_a_no_show_and_stale_waiters_are_skipped(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, admit_per_second=1, token_ttl=60, closes_in=36000)
    ghost, fan, payer = await make_user(runtime), await make_user(runtime), await make_user(runtime)
    admin = await make_user(runtime, role="ADMIN")
    await client.post("/api/queue", json=show["body"], headers=payer["headers"])
    await tick(runtime, show["id"])  # 1 admission/s: half a second of credit admits nobody yet
    clock.advance(1)
    await tick(runtime, show["id"])
    assert (await client.get("/api/queue/status", params=_q(show), headers=payer["headers"])).json()[
        "status"
    ] == "READY"
    await service.issue_release_lease(runtime.hot_redis, show["id"], payer["id"])

    await client.post("/api/queue", json=show["body"], headers=ghost["headers"])
    await client.post("/api/queue", json=show["body"], headers=fan["headers"])
    clock.advance(400)  # longer than STALE_AFTER_SECONDS; the fan keeps polling, the ghost does not
    await client.get("/api/queue/status", params=_q(show), headers=fan["headers"])
    await tick(runtime, show["id"])
    assert await store.active_users(runtime.redis, show["id"]) == [fan["id"]]
    gone = (await client.get("/api/queue/status", params=_q(show), headers=ghost["headers"])).json()
    assert gone["status"] == "NOT_IN_QUEUE"

    clock.advance(61)  # fan's lease runs out unused
    await tick(runtime, show["id"])
    assert await store.active_users(runtime.redis, show["id"]) == []
    after = (await client.get("/api/queue/status", params=_q(show), headers=fan["headers"])).json()
    assert after["status"] == "NOT_IN_QUEUE"
    rejoin = (await client.post("/api/queue", json=show["body"], headers=fan["headers"])).json()
    assert rejoin["status"] == "WAITING" and rejoin["position"] == 1

    view = (await client.get(f"/api/admin/shows/{show['id']}/queue", headers=admin["headers"])).json()
    assert view["admitted_total"] == 2 and view["no_shows"] == 1 and view["converted"] == 1
    assert view["no_show_rate"] == 0.5 and view["stale_skipped"] == 1 and view["waiting"] == 1


async def test_admin_pause_resume_and_live_settings(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, admit_per_second=2)
    admin, fan = await make_user(runtime, role="ADMIN"), await make_user(runtime)
    url = f"/api/admin/shows/{show['id']}/queue"
    assert (await client.post(url + "/pause", headers=fan["headers"])).status_code == 403
    assert (
        await client.post("/api/admin/shows/999999/queue/pause", headers=admin["headers"])
    ).status_code == 404

    users = [await make_user(runtime) for _ in range(10)]
    for u in users:
        await client.post("/api/queue", json=show["body"], headers=u["headers"])
    paused = await client.post(url + "/pause", headers=admin["headers"])
    assert paused.status_code == 200 and paused.json()["paused"] is True
    for _ in range(3):
        await tick(runtime, show["id"])
        clock.advance(1)
    assert await store.active_users(runtime.redis, show["id"]) == []
    honest = (await client.get("/api/queue/status", params=_q(show), headers=users[3]["headers"])).json()
    assert honest["estimated_wait_seconds"] is None and honest["estimate_basis"] == "unknown"

    assert (await client.post(url + "/resume", headers=admin["headers"])).json()["paused"] is False
    patched = await client.patch(
        url, json={"admit_per_second": 50, "max_active": 3}, headers=admin["headers"]
    )
    assert patched.status_code == 200 and patched.json()["max_active"] == 3
    assert patched.json()["admit_per_second"] == 50
    await tick(runtime, show["id"])
    assert len(await store.active_users(runtime.redis, show["id"])) == 3
    bad = await client.patch(url, json={"admit_per_second": -1, "nope": 1}, headers=admin["headers"])
    assert bad.status_code == 422
    cleared = await client.patch(url, json={"clear_max_active": True}, headers=admin["headers"])
    assert cleared.json()["max_active"] is None
    clock.advance(1)
    await tick(runtime, show["id"])
    view = (await client.get(url, headers=admin["headers"])).json()
    assert view["active"] == 10 and view["waiting"] == 0 and view["admitted_total"] == 10
    assert view["admission_rate"] is not None


async def test_admin_switches_a_show_between_adaptive_and_static_admission(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """The show's `queue.adaptive` over the admin API: PATCH .../queue and the show's own PATCH
    both set it, GET .../queue, GET /api/shows/{id} and the database agree; bad values are 422
    problems that change nothing."""
    admin = await make_user(runtime, role="ADMIN")
    h = admin["headers"]
    show = await make_show(runtime)
    sid = show["id"]
    url = f"/api/admin/shows/{sid}/queue"
    view = (await client.get(url, headers=h)).json()
    assert view["adaptive"] is True and view["buyer_p99_target_ms"] == 100  # the column's default

    patched = await client.patch(url, json={"adaptive": False}, headers=h)
    assert patched.status_code == 200, patched.text
    assert patched.json()["adaptive"] is False and patched.json()["buyer_p99_target_ms"] is None
    view = (await client.get(url, headers=h)).json()
    assert view["adaptive"] is False and view["adaptive_rate"] is None and view["buyer_p99_target_ms"] is None
    assert (await client.get(f"/api/shows/{sid}")).json()["queue"]["adaptive"] is False
    async with runtime.sessions() as s:
        assert (
            await s.execute(text("SELECT queue_adaptive FROM shows WHERE id = :s"), {"s": sid})
        ).scalar_one() is False
    # Other settings leave it alone.
    other = await client.patch(url, json={"admit_per_second": 7}, headers=h)
    assert other.json()["adaptive"] is False and other.json()["admit_per_second"] == 7

    for bad in ({"adaptive": "no"}, {"adaptive": 1}):
        r = await client.patch(url, json=bad, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR", r.text
    for bad in ({"queue": {"adaptive": None}}, {"queue": {"adaptive": "yes"}}):
        r = await client.patch(f"/api/admin/shows/{sid}", json=bad, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR", r.text
    assert (await client.get(url, headers=h)).json()["adaptive"] is False

    # The show's own PATCH takes it too (queue settings are not frozen by the sale).
    back = await client.patch(f"/api/admin/shows/{sid}", json={"queue": {"adaptive": True}}, headers=h)
    assert back.status_code == 200, back.text
    assert back.json()["queue"]["adaptive"] is True
    assert (await client.get(url, headers=h)).json()["adaptive"] is True


async def test_worker_job_ticks_tracked_shows_and_drops_closed_ones(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    (job,) = [j for j in all_jobs(runtime.settings) if j.name == "queue_admission"]
    show = await make_show(runtime, closes_in=30)
    fan = await make_user(runtime)
    await client.post("/api/queue", json=show["body"], headers=fan["headers"])
    assert await store.tracked_shows(runtime.redis) == [show["id"]]
    assert await job.run(runtime) == 1
    clock.advance(31)
    assert await job.run(runtime) == 0
    assert await store.tracked_shows(runtime.redis) == []
    ttl = await runtime.redis.ttl(store.keys(show["id"]).members)
    assert 0 < ttl <= service.CLOSED_QUEUE_TTL_SECONDS
    closed = await client.post("/api/queue", json=show["body"], headers=fan["headers"])
    assert closed.status_code == 409 and closed.json()["code"] == "SALE_CLOSED"


async def test_metrics_show_waiting_and_active_without_a_worker_tick_in_this_process(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, admit_per_second=1)
    users = [await make_user(runtime) for _ in range(3)]
    for u in users:
        assert (await client.post("/api/queue", json=show["body"], headers=u["headers"])).status_code == 200
    label = f'show_id="{show["id"]}"'
    text = (await client.get("/metrics")).text
    assert f"boxoffice_queue_waiting{{{label}}} 3.0" in text
    assert f"boxoffice_queue_active{{{label}}} 0.0" in text
    admitted: list[int] = []
    for _ in range(10):  # 1/s: the first ticks of a new queue admit nobody yet
        admitted += (await tick(runtime, show["id"])).admitted_users
        if admitted:
            break
        clock.advance(0.5)
    assert 1 <= len(admitted) < 3
    runtime.metrics.queue_active.labels(str(show["id"])).set(-1)  # a stale value the scrape must correct
    text = (await client.get("/metrics")).text
    n = len(admitted)
    assert f"boxoffice_queue_active{{{label}}} {float(n)}" in text, text[-1500:]
    assert f"boxoffice_queue_waiting{{{label}}} {float(3 - n)}" in text


async def test_the_lean_status_route_checks_like_the_documented_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """GET /api/queue/status is served without FastAPI's DI: same auth, same 422 shape, same body."""
    show = await make_show(runtime)
    fan = await make_user(runtime)
    h = fan["headers"]
    url = "/api/queue/status"
    for params, bad in (
        ({"concert_id": show["concert_id"]}, ["show_id"]),
        ({"concert_id": "x", "show_id": show["id"]}, ["concert_id"]),
        ({"concert_id": 0, "show_id": 2**63}, ["concert_id", "show_id"]),
    ):
        r = await client.get(url, params=params, headers=h)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "VALIDATION_ERROR"
        assert [e["loc"] for e in r.json()["errors"]] == [["query", name] for name in bad]
    for headers, code in (
        ({}, "AUTH_REQUIRED"),
        ({"Authorization": f"Basic {fan['token']}"}, "AUTH_REQUIRED"),
        ({"Authorization": "Bearer not.a.jwt"}, "INVALID_TOKEN"),
    ):
        r = await client.get(url, params=_q(show), headers=headers)
        assert r.status_code == 401 and r.json()["code"] == code
        assert r.headers["www-authenticate"] == "Bearer"
    ok = await client.get(url, params=_q(show), headers=h)
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert ok.json()["status"] == "NOT_IN_QUEUE" and ok.json()["show_id"] == show["id"]
    doc = (await client.get("/openapi.json")).json()
    assert {p["name"] for p in doc["paths"][url]["get"]["parameters"]} == {
        "concert_id",
        "show_id",
        "X-Queue-Ticket",
    }


async def test_out_of_range_show_ids_are_422_not_a_database_overflow(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await make_user(runtime, role="ADMIN")
    huge = 99999999999999999999  # beyond bigint
    for method, url in (
        ("GET", f"/api/shows/{huge}/queue/fairness"),
        ("GET", f"/api/admin/shows/{huge}/queue"),
        ("POST", f"/api/admin/shows/{huge}/queue/pause"),
        ("POST", f"/api/admin/shows/{huge}/queue/resume"),
        ("GET", "/api/shows/0/queue/fairness"),
    ):
        r = await client.request(method, url, headers=admin["headers"])
        assert r.status_code == 422, (url, r.status_code, r.text)
        assert r.json()["errors"][0]["loc"] == ["path", "show_id"]


async def test_a_join_waits_for_redis_twice_and_answers_what_a_poll_then_says(
    settings, runtime: Runtime
) -> None:  # type: ignore[no-untyped-def]
    """A join's first round (the deny-list, the rate limit's count, the show's settings) and then
    the join with its status in one script: two waits for Redis, for a new place and a kept one;
    a third on a miss of the show's cache (its SET after PostgreSQL answered). On a Redis Cluster
    the first round's three keys may live on three nodes, written at once and answered in
    parallel: each node's reply not yet in when awaited counts a wait, so up to two more. The
    answer is the one a status poll gives right after."""
    async with traced(settings, runtime, trace_breakdown=True) as (client, own):
        show = await make_show(own)
        show_id = show["body"]["show_id"]
        fans = [await make_user(own) for _ in range(5)]
        warm = await client.post("/api/queue", json=show["body"], headers=fans.pop()["headers"])
        assert warm.status_code == 200  # the process's Redis connection is up
        sampled = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}

        parallel_waits = 2 if own.hot_redis.cluster else 0

        def assert_waits(response: httpx.Response, single_node: int) -> None:
            assert response.status_code == 200, response.text
            waits = int(str(server_timing(response.headers["server-timing"])["redis_calls"]))
            assert single_node <= waits <= single_node + parallel_waits, waits

        await store.drop_show_cache(own.redis, show_id)
        missed = await client.post("/api/queue", json=show["body"], headers={**fans[0]["headers"], **sampled})
        assert_waits(missed, 3)
        # The cache lives 3 s; pinned longer here so a slow host cannot turn a hit into a miss.
        info = await service.read_show(own, show_id)
        await store.set_show_cache(own.hot_redis, show_id, info.to_json(), ttl_seconds=600)
        for fan in fans[1:]:
            for _ in range(2):  # a new place, then the same one kept
                joined = await client.post(
                    "/api/queue", json=show["body"], headers={**fan["headers"], **sampled}
                )
                assert_waits(joined, 2)
                polled = await client.get("/api/queue/status", params=_q(show), headers=fan["headers"])
                assert polled.status_code == 200, polled.text
                answer, poll = joined.json(), polled.json()
                assert answer.pop("poll_after_seconds") > 0 and poll.pop("poll_after_seconds") > 0  # jittered
                assert answer == poll and answer["status"] == "WAITING" and answer["queue_ticket"]
