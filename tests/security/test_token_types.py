"""A token is only ever what it was issued as (issue 26, finding 1).

Access tokens, admission (`queue:`) tokens, queue tickets and the web's refresh single-flight
entries were once kept in one per-process cache keyed by prefixed strings: `Bearer queue:<admission
token>` then found the admission claims in that cache, the deny-list check tripped over their type
and a catch-all meant for "Redis is down" let the request through, as the token's owner, after
the owner had logged out. The other prefixes gave 500s. Each of them must be a plain 401 on
every front door, before and after logout, and a cookie carrying them a logged-out page.
"""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
import httpx
import pytest

from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.runtime import Runtime
from tests.helpers.shows import make_show
from tests.integration.grpc_support import error_info, ticket_stub
from tests.integration.test_queue_support import tick
from tests.integration.test_web_layer import HTML, _signup

PASSWORD = "Token-Types-Passw0rd"


async def _login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    signup = {"email": email, "password": PASSWORD, "name": "Fan"}
    assert (await client.post("/api/auth/signup", json=signup)).status_code == 201
    resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    pair: dict[str, str] = resp.json()
    return pair


async def _admitted(client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]) -> dict[str, Any]:
    """A show, the fan queued and admitted; the admission token used once (so it is cached)."""
    made = await make_show(runtime, seats=4)
    body = {"concert_id": made["concert_id"], "show_id": made["show_id"]}
    joined = await client.post("/api/queue", json=body, headers=auth)
    assert joined.status_code in (200, 201), joined.text
    await tick(runtime, made["show_id"])
    ready = (await client.post("/api/reservations/token", json=body, headers=auth)).json()
    assert ready["status"] == "READY", ready
    token = str(ready["token"])
    seats = await client.get(f"/api/shows/{made['show_id']}/seats", headers={**auth, "X-Queue-Token": token})
    assert seats.status_code == 200
    hold = await client.post(
        "/api/reservations",
        json={"show_id": made["show_id"], "seat_ids": made["seat_ids"][:1]},
        headers={**auth, "X-Queue-Token": token, "Idempotency-Key": "types-1"},
    )
    assert hold.status_code == 201, hold.text
    return {**made, "token": token, "ticket": joined.json().get("queue_ticket"), "hold": hold.json()}


async def _refused_everywhere(client: httpx.AsyncClient, bearer: str, hold_id: int) -> None:
    auth = {"Authorization": f"Bearer {bearer}"}
    me = await client.get("/api/users/me", headers=auth)
    assert me.status_code == 401, me.text
    assert me.json()["code"] == "INVALID_TOKEN"
    edit = await client.patch("/api/users/me", json={"name": "Mallory"}, headers=auth)
    assert edit.status_code == 401, edit.text
    listed = await client.get("/api/reservations", headers=auth)
    assert listed.status_code == 401, listed.text
    cancel = await client.delete(f"/api/reservations/{hold_id}", headers=auth)
    assert cancel.status_code == 401, cancel.text


async def test_an_admission_token_is_never_a_login_before_or_after_logout(
    client: httpx.AsyncClient, runtime: Runtime, grpc_target: str
) -> None:
    pair = await _login(client, "types@example.test")
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    show = await _admitted(client, runtime, auth)
    hold_id = show["hold"]["reservation_id"]
    forged = "queue:" + show["token"]

    await _refused_everywhere(client, forged, hold_id)
    assert (await client.post("/api/auth/logout", headers=auth)).status_code == 204
    await _refused_everywhere(client, forged, hold_id)

    async with ticket_stub(grpc_target) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListReservations(
                pb.ListReservationsRequest(), metadata=(("authorization", f"Bearer {forged}"),)
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_info(caught.value).reason == "INVALID_TOKEN"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Cancel(
                pb.ReservationRef(reservation_id=hold_id), metadata=(("authorization", f"Bearer {forged}"),)
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # the hold is still the owner's and still held
    async with runtime.sessions() as session:
        from sqlalchemy import text

        status = (
            await session.execute(text("SELECT status FROM reservations WHERE id = :i"), {"i": hold_id})
        ).scalar_one()
    assert status == "TEMP_RESERVED"


async def test_other_cached_token_kinds_are_a_401_not_a_500(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    pair = await _login(client, "kinds@example.test")
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    show = await _admitted(client, runtime, auth)
    # a queue ticket the waiting room verified (a poll with it caches it)
    assert show["ticket"]
    if show["ticket"]:
        params = {"concert_id": show["concert_id"], "show_id": show["show_id"]}
        polled = await client.get(
            "/api/queue/status", params=params, headers={**auth, "X-Queue-Ticket": show["ticket"]}
        )
        assert polled.status_code == 200, polled.text
        resp = await client.get("/api/users/me", headers={"Authorization": f"Bearer ticket:{show['ticket']}"})
        assert resp.status_code == 401, resp.text

    # a web refresh the web layer rotated (its single-flight entry)
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as web:
        assert (await _signup(web, "webkinds@example.test")).status_code == 303
        old_refresh = web.cookies["bo_refresh"]
        runtime.clock.advance(runtime.settings.access_token_ttl_seconds + 5)  # type: ignore[attr-defined]
        assert (await web.get("/account")).status_code == 200  # rotated server side
        digest = hashlib.sha256(old_refresh.encode()).hexdigest()
        resp = await client.get("/api/users/me", headers={"Authorization": f"Bearer web-refresh:{digest}"})
        assert resp.status_code == 401, resp.text
        assert resp.json()["code"] == "INVALID_TOKEN"

    # an admission token as the web's access cookie: a logged-out page, not a 500
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as web:
        web.cookies.set("bo_access", "queue:" + show["token"])
        page = await web.get("/account")
        assert page.status_code == 303 and page.headers["location"].startswith("/login"), page.text
        web.cookies.set("bo_access", show["token"])
        page = await web.get("/account")
        assert page.status_code == 303, page.text
