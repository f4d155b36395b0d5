"""The request's unit of work runs its effects after the commit, as a flow's does: a poll that
reads the show while an admin's write is still open re-caches the old row, and the effect that
runs after the commit drops it, so the next poll sees the write (never the old state for 3 s)."""

from __future__ import annotations

import pytest

from boxoffice.catalog import service as catalog
from boxoffice.db.uow import after_commit
from boxoffice.http import deps
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import service, store
from tests.integration.test_queue_support import make_show


async def test_a_poll_during_an_admin_write_never_keeps_the_old_state(runtime: Runtime) -> None:
    show = await make_show(runtime)
    show_id = show["id"]
    request = deps.unit_of_work(runtime)
    session = await anext(request)
    await service.set_paused(runtime, session, show_id, True)

    # A poll on another connection while the write is uncommitted: it reads and caches the old row.
    during = await service._load_show(runtime, show_id)
    assert during.paused is False
    assert await store.get_show_cache(runtime.hot_redis, show_id) is not None

    with pytest.raises(StopAsyncIteration):  # the endpoint returned: commit, then the effects
        await anext(request)
    assert await store.get_show_cache(runtime.hot_redis, show_id) is None
    assert (await service._load_show(runtime, show_id)).paused is True


async def test_effects_are_dropped_when_the_request_rolls_back(runtime: Runtime) -> None:
    show = await make_show(runtime)
    ran: list[int] = []

    async def effect() -> None:
        ran.append(1)

    request = deps.unit_of_work(runtime)
    session = await anext(request)
    after_commit(session, effect)
    with pytest.raises(RuntimeError):
        await request.athrow(RuntimeError("the endpoint failed"))
    assert ran == []
    async with runtime.sessions() as session:
        assert (await catalog.get_show(session, show["id"])).id == show["id"]


async def test_after_commit_needs_a_unit_of_work(runtime: Runtime) -> None:
    async with runtime.sessions() as session:
        with pytest.raises(RuntimeError, match="unit of work"):
            after_commit(session, lambda: None)  # type: ignore[arg-type,return-value]
