"""A hot route answers before its lean writes' after-commit effects (db.uow.effects_after_answer,
http/hot.py): a real uvicorn server on a socket, a real lean unit of work on PostgreSQL, an effect
held back by an event. A refusal after a committed write still runs that write's effects before
the problem answer; outside a hot route (the gRPC door, the worker) effects run before the flow
returns, as before."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from boxoffice.app import create_app
from boxoffice.config import Settings
from boxoffice.db.uow import lean_unit_of_work
from boxoffice.errors import SeatsTaken
from boxoffice.http.hot import HotInput, HotRoute
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.server import serve


class _Ok(BaseModel):
    ok: bool


async def _until(condition: object, seconds: float = 5.0) -> None:
    end = asyncio.get_running_loop().time() + seconds
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < end, "the effect never ran"
        await asyncio.sleep(0.01)


async def test_the_answer_leaves_before_the_effects_and_a_refusal_waits_for_them(
    settings: Settings, runtime: Runtime
) -> None:
    release = asyncio.Event()
    ran: list[str] = []

    async def effect() -> None:
        await release.wait()
        ran.append("effect")

    async def write(hot: HotInput, refuse: bool) -> Response:
        async with lean_unit_of_work(hot.runtime.engine) as uow:
            assert await uow.conn.fetchval("SELECT 1") == 1
            uow.after_commit(effect)
        if refuse:
            raise SeatsTaken("taken meanwhile", seat_ids=[])
        return JSONResponse({"ok": True}, status_code=201)

    async def accepted(hot: HotInput) -> Response:
        return await write(hot, refuse=False)

    async def refused(hot: HotInput) -> Response:
        return await write(hot, refuse=True)

    app = create_app(settings, runtime=runtime)
    for path, call in (("/test/accepted", accepted), ("/test/refused", refused)):
        route = HotRoute(path, "POST", call, response_model=_Ok, summary=path, tags=["test"])
        app.router.routes.insert(0, route.served())
    user = await make_user(runtime)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        answered = await client.post("/test/accepted", headers=user["headers"])
        assert answered.status_code == 201 and answered.json() == {"ok": True}
        assert ran == []  # answered while its effect still waits
        release.set()
        await _until(lambda: ran == ["effect"])

        # A refusal after the commit: the committed write's effect runs before the 409.
        release.clear()
        pending = asyncio.create_task(client.post("/test/refused", headers=user["headers"]))
        await asyncio.sleep(0.3)
        assert not pending.done()  # the problem answer waits for the effect
        release.set()
        problem = await pending
        assert problem.status_code == 409 and problem.json()["code"] == "SEATS_TAKEN"
        assert ran == ["effect", "effect"]

    # Outside a hot route the effect runs before the block's caller goes on.
    async with lean_unit_of_work(runtime.engine) as uow:
        uow.after_commit(effect)
    assert ran == ["effect"] * 3
