"""The money rules, written once: one "confirm the reservation" for both payment paths (the same
rows and events whichever way a fan pays), one idempotency behaviour for an expired key on every
route that takes one (an expired key that was not purged yet is absent: the request runs afresh,
never a replay), and one timestamp format in every answer (UTC with a `Z`, POSTs as GETs)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated, simulator

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(autouse=True)
async def _invariants_after(runtime: Runtime):  # type: ignore[no-untyped-def]
    yield
    await assert_invariants(runtime)


async def _expire_key(runtime: Runtime, key: str) -> None:
    """The key's 24 h are over; the purge job has not run yet."""
    async with runtime.sessions() as s, s.begin():
        done = await s.execute(
            text("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = :k"),
            {"k": key},
        )
        assert done.rowcount == 1


async def _hold(
    client: httpx.AsyncClient, runtime: Runtime, user: dict[str, Any], body: dict[str, Any], key: str
):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/reservations", json=body, headers=gated(runtime, user, body["show_id"], key)
    )


async def _events(runtime: Runtime, reservation_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            text(
                "SELECT event_type, aggregate_type, payload FROM outbox WHERE "
                "(payload->>'reservation_id')::bigint = :r AND event_type IN "
                "('seat.sold', 'reservation.confirmed', 'payment.succeeded') ORDER BY id"
            ),
            {"r": reservation_id},
        )
        return [(r[0], r[1], dict(r[2])) for r in rows]


async def test_both_payment_paths_confirm_with_the_same_rows_and_events(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    fan = await make_user(runtime, balance=1_000_000)
    shapes = {}
    for method in ("BALANCE", "CARD"):
        show = await make_show(runtime, seats=4)
        held = await _hold(
            client,
            runtime,
            fan,
            {"show_id": show["show_id"], "seat_ids": show["seat_ids"][:2]},
            f"h-{method}",
        )
        rid = held.json()["reservation_id"]
        async with simulator(runtime):
            paid = await client.post(
                "/api/payments",
                json={"reservation_id": rid, "method": method},
                headers=gated(runtime, fan, show["show_id"], f"p-{method}"),
            )
        assert paid.status_code == 201, paid.text
        events = await _events(runtime, rid)
        payment_id = paid.json()["payment_id"]
        seats = sorted(show["seat_ids"][:2])
        assert events == [
            (
                "seat.sold",
                "reservation",
                {"reservation_id": rid, "user_id": fan["id"], "seat_ids": seats, "status": "RESERVED"},
            ),
            (
                "reservation.confirmed",
                "reservation",
                {"reservation_id": rid, "user_id": fan["id"], "seat_ids": seats, "status": "RESERVED"},
            ),
            (
                "payment.succeeded",
                "payment",
                {"payment_id": payment_id, "reservation_id": rid, "user_id": fan["id"]},
            ),
        ]
        async with runtime.sessions() as s:
            row = (
                await s.execute(
                    text(
                        "SELECT r.status, r.confirmed_at IS NOT NULL, array_agg(DISTINCT s.status), "
                        "bool_and(s.hold_expires_at IS NULL) FROM reservations r JOIN seats s "
                        "ON s.reservation_id = r.id WHERE r.id = :r GROUP BY r.id"
                    ),
                    {"r": rid},
                )
            ).one()
        shapes[method] = tuple(row)
    assert shapes["BALANCE"] == shapes["CARD"] == ("RESERVED", True, ["RESERVED"], True)


async def test_an_expired_key_is_not_replayed_on_a_top_up(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    fan = await make_user(runtime, balance=0)
    headers = {**fan["headers"], "Idempotency-Key": "top-1"}
    first = await client.post("/api/users/me/balance", json={"amount": 500}, headers=headers)
    assert first.status_code in (200, 201), first.text
    await _expire_key(runtime, "top-1")
    again = await client.post("/api/users/me/balance", json={"amount": 500}, headers=headers)
    assert again.status_code == first.status_code and "Idempotent-Replayed" not in again.headers
    assert again.json()["balance"] == 1_000


@pytest.mark.parametrize("shape", ["seat_ids", "quantity"])
async def test_an_expired_key_is_not_replayed_on_a_hold(
    client: httpx.AsyncClient, runtime: Runtime, shape: str
) -> None:
    fan = await make_user(runtime)
    show = await make_show(runtime, seats=6, max_seats=4)
    body: dict[str, Any] = {"show_id": show["show_id"]}
    body |= {"seat_ids": show["seat_ids"][:2]} if shape == "seat_ids" else {"quantity": 2}
    first = await _hold(client, runtime, fan, body, "hold-1")
    assert first.status_code == 201, first.text
    cancelled = await client.delete(
        f"/api/reservations/{first.json()['reservation_id']}", headers=fan["headers"]
    )
    assert cancelled.status_code == 200
    await _expire_key(runtime, "hold-1")
    again = await _hold(client, runtime, fan, body, "hold-1")
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["reservation_id"] != first.json()["reservation_id"]


async def test_an_expired_key_is_not_replayed_on_a_payment(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    fan = await make_user(runtime, balance=1_000_000)
    show = await make_show(runtime, seats=4)
    held = await _hold(
        client, runtime, fan, {"show_id": show["show_id"], "seat_ids": show["seat_ids"][:1]}, "h"
    )
    rid = held.json()["reservation_id"]
    headers = gated(runtime, fan, show["show_id"], "pay-1")
    first = await client.post(
        "/api/payments", json={"reservation_id": rid, "method": "BALANCE"}, headers=headers
    )
    assert first.status_code == 201, first.text
    await _expire_key(runtime, "pay-1")
    again = await client.post(
        "/api/payments", json={"reservation_id": rid, "method": "BALANCE"}, headers=headers
    )
    assert again.status_code == 409 and again.json()["code"] == "ALREADY_PAID", again.text
    assert "Idempotent-Replayed" not in again.headers


def _timestamps(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _timestamps(v)]
    if isinstance(value, list):
        return [t for v in value for t in _timestamps(v)]
    return [value] if isinstance(value, str) and ISO.match(value) else []


async def test_every_answer_writes_timestamps_one_way(client: httpx.AsyncClient, runtime: Runtime) -> None:
    fan = await make_user(runtime, balance=1_000_000)
    show = await make_show(runtime, seats=4)
    held = await _hold(
        client, runtime, fan, {"show_id": show["show_id"], "seat_ids": show["seat_ids"][:1]}, "h"
    )
    rid = held.json()["reservation_id"]
    paid = await client.post(
        "/api/payments",
        json={"reservation_id": rid, "method": "BALANCE"},
        headers=gated(runtime, fan, show["show_id"], "p"),
    )
    replayed = await client.post(
        "/api/payments",
        json={"reservation_id": rid, "method": "BALANCE"},
        headers=gated(runtime, fan, show["show_id"], "p"),
    )
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    answers = [
        held.json(),
        paid.json(),
        replayed.json(),
        (await client.get(f"/api/reservations/{rid}", headers=fan["headers"])).json(),
        (await client.get(f"/api/payments/{paid.json()['payment_id']}", headers=fan["headers"])).json(),
        (await client.get("/api/reservations", headers=fan["headers"])).json(),
    ]
    stamps = [t for answer in answers for t in _timestamps(answer)]
    assert len(stamps) >= 8
    assert all(t.endswith("Z") for t in stamps), [t for t in stamps if not t.endswith("Z")]
