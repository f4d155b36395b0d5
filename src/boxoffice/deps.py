"""FastAPI dependencies shared by every domain: the runtime and the request's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.redis_client import RedisClient
from boxoffice.runtime import Runtime


# Dependencies are `async def` even when they do nothing async: FastAPI runs plain `def`
# dependencies in a thread pool, which cost ~10% of a hold's CPU in the burst profile.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

# Ids are PostgreSQL bigints: anything outside 1..ID_MAX is a 422, never a database overflow (500).
ID_MAX = 2**63 - 1
PathId = Annotated[int, Path(ge=1, le=ID_MAX)]


async def unit_of_work(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's transaction: committed when the endpoint returns, rolled back if it raises.

    scope="function" makes FastAPI run the code after `yield` (the commit) before the response is
    sent, so a client never sees a success whose commit failed, and a follow-up request always sees
    the write. (The default scope for yield dependencies, "request", commits after the response.)
    """
    async with runtime.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


async def get_redis(runtime: RuntimeDep) -> RedisClient:
    return runtime.redis


RedisDep = Annotated[RedisClient, Depends(get_redis)]
