"""Randomized pre-queue: SHA-256(seed) published before the sale; after it, the revealed seed and
join list recompute exactly the order that was served, which differs from the join order."""

from __future__ import annotations

import hashlib

import httpx

from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import admission
from tests.factories import make_user
from tests.integration.test_queue_support import make_show, tick


async def test_prequeue_order_is_drawn_from_the_committed_seed(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, pre_queue_in=-60, opens_in=60, admit_per_second=10)
    q = {"concert_id": show["concert_id"], "show_id": show["id"]}
    fans = [await make_user(runtime) for _ in range(20)]
    for fan in fans:
        resp = await client.post("/api/queue", json=show["body"], headers=fan["headers"])
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["status"] == "WAITING" and body["pre_queue"] is True and body["position"] is None
        assert body["estimate_basis"] == "sale_start" and 55 <= body["estimated_wait_seconds"] <= 60
    again = (await client.post("/api/queue", json=show["body"], headers=fans[0]["headers"])).json()
    assert again["pre_queue"] is True
    leaver = fans[5]
    assert (await client.delete("/api/queue", params=q, headers=leaver["headers"])).status_code == 204

    before = (await client.get(f"/api/shows/{show['id']}/queue/fairness")).json()
    assert before["pre_queue"] is True and before["revealed"] is False
    assert len(before["commitment"]) == 64 and before["seed"] is None and before["join_list"] is None
    assert await tick(runtime, show["id"]) is None  # nobody is admitted before the sale

    clock.advance(61)
    late = await make_user(runtime)
    late_view = (await client.post("/api/queue", json=show["body"], headers=late["headers"])).json()
    assert late_view["pre_queue"] is False and late_view["position"] == 21  # behind all 20 pre-queue slots

    served: list[int] = []
    for _ in range(10):
        for fan in [*fans, late]:  # waiters keep polling (and so stay fresh)
            await client.get("/api/queue/status", params=q, headers=fan["headers"])
        result = await tick(runtime, show["id"])
        served.extend(result.admitted_users)
        clock.advance(1)
        if len(served) == 20:
            break

    after = (await client.get(f"/api/shows/{show['id']}/queue/fairness")).json()
    assert after["revealed"] is True and after["commitment"] == before["commitment"]
    seed = after["seed"]
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == before["commitment"]
    join_order = [f["id"] for f in fans]
    assert after["join_list"] == join_order
    recomputed = admission.prequeue_order(seed, after["join_list"])
    assert recomputed == after["order"]
    assert served == [u for u in recomputed if u != leaver["id"]] + [late["id"]]
    assert recomputed != join_order
    gone = (await client.get("/api/queue/status", params=q, headers=leaver["headers"])).json()
    assert gone["status"] == "NOT_IN_QUEUE"


async def test_fairness_without_prequeue_and_unknown_show(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime)
    body = (await client.get(f"/api/shows/{show['id']}/queue/fairness")).json()
    assert body["pre_queue"] is False and body["commitment"] is None
    assert (await client.get("/api/shows/999999/queue/fairness")).status_code == 404
