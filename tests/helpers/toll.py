"""Paying the queue's toll in tests: fetch a real challenge and solve it like any ALTCHA client."""

from __future__ import annotations

from typing import Any

import httpx

from boxoffice.waiting_room import toll


def solve(challenge: dict[str, Any]) -> str:
    """ALTCHA's base64 payload for a challenge JSON (the search a browser's worker does)."""
    number = toll.solve(challenge)
    assert number is not None, "the challenge has no solution up to maxnumber"
    return toll.payload(challenge, number)


async def solved(client: httpx.AsyncClient, user: dict[str, Any], show_id: int) -> dict[str, str]:
    """Headers for POST /api/queue: the user's bearer token and a freshly solved X-Altcha."""
    answer = await client.get(f"/api/shows/{show_id}/queue/challenge", headers=user["headers"])
    assert answer.status_code == 200, answer.text
    return {**user["headers"], "X-Altcha": solve(answer.json())}
