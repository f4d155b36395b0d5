"""FastAPI dependencies of the waiting room: the queue-token gate of `{show_id}` routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from boxoffice import errors as e
from boxoffice.auth.dependencies import CurrentUser
from boxoffice.http.deps import RuntimeDep
from boxoffice.http.problems import raises
from boxoffice.waiting_room.tokens import QueueClaims, check_queue_token


@raises(e.QueueTokenRequired, e.QueueTokenRefused, e.QueueTokenForeign, required_headers=("X-Queue-Token",))
async def require_queue_token_for_path(
    show_id: int,
    claims: CurrentUser,
    runtime: RuntimeDep,
    x_queue_token: Annotated[str | None, Header(description="Admission token from the waiting room")] = None,
) -> QueueClaims:
    """Dependency for routes with `{show_id}` in the path (the seat map, the seat stream)."""
    return await check_queue_token(runtime, claims.user_id, show_id, x_queue_token)


QueueGate = Annotated[QueueClaims, Depends(require_queue_token_for_path)]
