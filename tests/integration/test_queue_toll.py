"""The toll at the queue's door with real PostgreSQL + Redis, over every door: a join needs a
solved ALTCHA challenge of this user and show; missing, wrong, stale, replayed and foreign
solutions each get their stable code (HTTP, gRPC, the page), never a place in line; the
difficulty is the show's setting (0 = off) and rises with the crowd."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import grpc
import httpx
import pytest
from sqlalchemy import text

from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import store, toll
from tests.factories import make_user
from tests.helpers.toll import solve, solved
from tests.integration.grpc_support import error_info, meta, ticket_stub
from tests.integration.test_admin_forms import console, csrf, says  # noqa: F401 - console: a fixture
from tests.integration.test_queue_support import make_show, tick

DIFFICULTY = 2000  # real work, small enough for Python to solve in a few milliseconds


def _code(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    return str(r.json()["code"])


async def _members(runtime: Runtime, show_id: int) -> dict[bytes, bytes]:
    return await runtime.redis.hgetall(store.keys(show_id).members)  # type: ignore[no-any-return, misc]


async def test_a_join_pays_the_toll_once_and_each_bad_solution_has_its_code(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, pow_difficulty=DIFFICULTY)
    other = await make_show(runtime, pow_difficulty=DIFFICULTY)
    fan, friend = await make_user(runtime), await make_user(runtime)

    anonymous = await client.get(f"/api/shows/{show['id']}/queue/challenge")
    assert anonymous.status_code == 401
    missing = await client.get("/api/shows/999999999/queue/challenge", headers=fan["headers"])
    assert missing.status_code == 404 and _code(missing) == "SHOW_NOT_FOUND"

    got = await client.get(f"/api/shows/{show['id']}/queue/challenge", headers=fan["headers"])
    assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
    challenge = got.json()
    assert set(challenge) == {"algorithm", "challenge", "maxnumber", "salt", "signature"}
    assert challenge["algorithm"] == "SHA-256" and challenge["maxnumber"] == DIFFICULTY
    assert f"&show={show['id']}&user={fan['id']}&" in challenge["salt"]

    join = show["body"]
    none = await client.post("/api/queue", json=join, headers=fan["headers"])
    assert none.status_code == 428 and _code(none) == "QUEUE_CHALLENGE_REQUIRED"
    garbage = await client.post("/api/queue", json=join, headers={**fan["headers"], "X-Altcha": "x!"})
    assert garbage.status_code == 400 and _code(garbage) == "QUEUE_CHALLENGE_INVALID"
    good = solve(challenge)
    data = json.loads(base64.b64decode(good))
    wrong = base64.b64encode(json.dumps({**data, "number": data["number"] + 1}).encode()).decode()
    wrong_r = await client.post("/api/queue", json=join, headers={**fan["headers"], "X-Altcha": wrong})
    assert wrong_r.status_code == 400 and _code(wrong_r) == "QUEUE_CHALLENGE_INVALID"
    # the fan's solution is neither another account's nor another show's
    foreign_user = await client.post("/api/queue", json=join, headers={**friend["headers"], "X-Altcha": good})
    assert foreign_user.status_code == 403 and _code(foreign_user) == "QUEUE_CHALLENGE_MISMATCH"
    foreign_show = await client.post(
        "/api/queue", json=other["body"], headers={**fan["headers"], "X-Altcha": good}
    )
    assert foreign_show.status_code == 403 and _code(foreign_show) == "QUEUE_CHALLENGE_MISMATCH"
    assert await _members(runtime, show["id"]) == {} and await _members(runtime, other["id"]) == {}

    ok = await client.post("/api/queue", json=join, headers={**fan["headers"], "X-Altcha": good})
    assert ok.status_code == 200 and ok.json()["status"] == "WAITING" and ok.json()["position"] == 1
    replay = await client.post("/api/queue", json=join, headers={**fan["headers"], "X-Altcha": good})
    assert replay.status_code == 409 and _code(replay) == "QUEUE_CHALLENGE_REPLAYED"

    stale_headers = await solved(client, friend, show["id"])
    clock.advance(toll.CHALLENGE_TTL_SECONDS + 1)
    stale = await client.post("/api/queue", json=join, headers=stale_headers)
    assert stale.status_code == 403 and _code(stale) == "QUEUE_CHALLENGE_EXPIRED"
    assert list(await _members(runtime, show["id"])) == [str(fan["id"]).encode()]
    fresh = await client.post("/api/queue", json=join, headers=await solved(client, friend, show["id"]))
    assert fresh.status_code == 200 and fresh.json()["position"] == 2

    metrics = (await client.get("/metrics")).text
    for outcome in ("paid", "required", "invalid", "foreign", "replayed", "expired"):
        assert re.search(rf'boxoffice_queue_toll_total\{{outcome="{outcome}"\}} [1-9]', metrics), outcome


async def test_many_joins_with_one_solution_at_once_get_one_place(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """Single use under a race: 25 joins carrying the same solved challenge at the same moment."""
    show = await make_show(runtime, pow_difficulty=DIFFICULTY)
    fan = await make_user(runtime)
    headers = await solved(client, fan, show["id"])
    answers = await asyncio.gather(
        *(client.post("/api/queue", json=show["body"], headers=headers) for _ in range(25))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [409] * 24, codes
    assert {_code(r) for r in answers if r.status_code == 409} == {"QUEUE_CHALLENGE_REPLAYED"}
    assert list(await _members(runtime, show["id"])) == [str(fan["id"]).encode()]


async def test_toll_off_needs_no_solution_and_the_setting_is_live(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime, pow_difficulty=0)
    fan, admin = await make_user(runtime), await make_user(runtime, role="ADMIN")
    assert (await client.post("/api/queue", json=show["body"], headers=fan["headers"])).status_code == 200
    off = (await client.get(f"/api/shows/{show['id']}/queue/challenge", headers=fan["headers"])).json()
    assert off["maxnumber"] == 0  # an ALTCHA client still solves it at once (n = 0)

    turned_on = await client.patch(
        f"/api/admin/shows/{show['id']}/queue", json={"pow_difficulty": 5000}, headers=admin["headers"]
    )
    assert turned_on.status_code == 200 and turned_on.json()["pow_difficulty"] == 5000
    late = await make_user(runtime)
    refused = await client.post("/api/queue", json=show["body"], headers=late["headers"])
    assert refused.status_code == 428 and _code(refused) == "QUEUE_CHALLENGE_REQUIRED"
    challenge = (await client.get(f"/api/shows/{show['id']}/queue/challenge", headers=late["headers"])).json()
    assert challenge["maxnumber"] == 5000
    listed = (await client.get(f"/api/shows/{show['id']}", headers=fan["headers"])).json()
    assert listed["queue"]["pow_difficulty"] == 5000
    bad = await client.patch(
        f"/api/admin/shows/{show['id']}/queue", json={"pow_difficulty": -1}, headers=admin["headers"]
    )
    assert bad.status_code == 422


async def test_the_difficulty_rises_with_the_crowd(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    """A crowd joining far faster than the line moves pays more per place (up to 10x)."""
    show = await make_show(runtime, pow_difficulty=1000, admit_per_second=1)
    fans = [await make_user(runtime) for _ in range(30)]
    admin = await make_user(runtime, role="ADMIN")
    await tick(runtime, show["id"])  # the join counter's first sample
    calm = (await client.get(f"/api/shows/{show['id']}/queue/challenge", headers=fans[0]["headers"])).json()
    assert calm["maxnumber"] == 1000
    for fan in fans:
        joined = await client.post(
            "/api/queue", json=show["body"], headers=await solved(client, fan, show["id"])
        )
        assert joined.status_code == 200
    clock.advance(1.0)
    await tick(runtime, show["id"])  # 30 joins in a second against ~1 admission a second
    crowded = (
        await client.get(f"/api/shows/{show['id']}/queue/challenge", headers=fans[0]["headers"])
    ).json()
    assert crowded["maxnumber"] == 1000 * toll.MAX_CROWD_FACTOR
    view = (await client.get(f"/api/admin/shows/{show['id']}/queue", headers=admin["headers"])).json()
    assert view["pow_difficulty"] == 1000 and view["pow_effective"] == 10_000
    assert 10 < view["join_rate"] <= 30  # 30 joins over the second advanced (and the real time spent)
    # the crowd thins out: the EWMA falls back and so does the toll
    for _ in range(12):
        clock.advance(5.0)
        await tick(runtime, show["id"])
    calmer = (await client.get(f"/api/shows/{show['id']}/queue/challenge", headers=fans[0]["headers"])).json()
    assert calmer["maxnumber"] < 2000


async def test_grpc_join_carries_the_solution_in_x_altcha(runtime: Runtime, grpc_target: str) -> None:
    show = await make_show(runtime, pow_difficulty=DIFFICULTY)
    fan = await make_user(runtime)
    request = pb.QueueRequest(concert_id=show["concert_id"], show_id=show["id"])
    async with ticket_stub(grpc_target) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as none:
            await stub.JoinQueue(request, metadata=meta(fan))
        assert none.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(none.value).reason == "QUEUE_CHALLENGE_REQUIRED"
        got = await stub.GetQueueChallenge(pb.QueueChallengeRequest(show_id=show["id"]), metadata=meta(fan))
        assert got.algorithm == "SHA-256" and got.maxnumber == DIFFICULTY
        challenge: dict[str, Any] = {
            "algorithm": got.algorithm,
            "challenge": got.challenge,
            "maxnumber": got.maxnumber,
            "salt": got.salt,
            "signature": got.signature,
        }
        payload = solve(challenge)
        joined = await stub.JoinQueue(request, metadata=(*meta(fan), ("x-altcha", payload)))
        assert joined.status == pb.QUEUE_STATE_WAITING and joined.position == 1
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await stub.JoinQueue(request, metadata=(*meta(fan), ("x-altcha", payload)))
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(again.value).reason == "QUEUE_CHALLENGE_REPLAYED"
        with pytest.raises(grpc.aio.AioRpcError) as junk:
            await stub.JoinQueue(request, metadata=(*meta(fan), ("x-altcha", "nope")))
        assert junk.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(junk.value).reason == "QUEUE_CHALLENGE_INVALID"


CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def test_the_page_form_sends_the_same_payload_and_refusals_are_sentences(app, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    show = await make_show(runtime, pow_difficulty=DIFFICULTY)
    transport = httpx.ASGITransport(app=app)
    html = {"Accept": "text/html"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=html) as c:
        page = await c.get("/signup")
        token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
        signed = await c.post(
            "/signup",
            data={
                "csrf_token": token,
                "email": f"toll{show['id']}@example.test",
                "password": "correct horse",
                "name": "Fan",
                "next": "/",
            },
        )
        assert signed.status_code == 303
        room = await c.get(f"/shows/{show['id']}/queue")
        assert room.status_code == 200 and "data-toll" in room.text and "vendor/altcha/worker.js" in room.text
        token = CSRF_RE.search(room.text).group(1)  # type: ignore[union-attr]
        without = await c.post(f"/shows/{show['id']}/queue", data={"csrf_token": token})
        assert without.status_code == 428 and "enable JavaScript" in without.text
        challenge = (await c.get(f"/web/queue/{show['id']}/challenge")).json()
        payload = solve(challenge)
        joined = await c.post(f"/shows/{show['id']}/queue", data={"csrf_token": token, "altcha": payload})
        assert joined.status_code == 303
        replay = await c.post(f"/shows/{show['id']}/queue", data={"csrf_token": token, "altcha": payload})
        assert replay.status_code == 409 and "already used" in replay.text


async def test_the_console_shows_the_toll_and_changes_it(
    console: httpx.AsyncClient,  # noqa: F811 - the fixture imported above
    runtime: Runtime,
) -> None:
    show = await make_show(runtime, pow_difficulty=100_000)
    page = await console.get(f"/admin/shows/{show['id']}/queue")
    assert page.status_code == 200
    assert says(page, "Bot toll now", "100,000") and 'name="pow_difficulty"' in page.text
    token = await csrf(console, f"/admin/shows/{show['id']}/queue")
    changed = await console.post(
        f"/admin/shows/{show['id']}/queue",
        data={"csrf_token": token, "admit_per_second": "10", "max_active": "", "pow_difficulty": "0"},
    )
    assert changed.status_code == 303
    async with runtime.sessions() as s:
        stored = await s.execute(
            text("SELECT queue_pow_difficulty FROM shows WHERE id = :s"), {"s": show["id"]}
        )
        assert stored.scalar_one() == 0
    after = await console.get(f"/admin/shows/{show['id']}/queue")
    assert says(after, "0 (off)")
    refused = await console.post(
        f"/admin/shows/{show['id']}/queue",
        data={"csrf_token": token, "admit_per_second": "10", "max_active": "", "pow_difficulty": "-5"},
    )
    assert refused.status_code == 422
    edit = await console.get(f"/admin/shows/{show['id']}")
    assert 'name="queue-pow_difficulty"' in edit.text
