"""Payments: balance and card (through the real simulator over HTTP), faults, reconciliation,
refunds. Every test ends with the invariants I1-I4 checked against the database."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from boxoffice.booking.shield import seat_key
from boxoffice.db.idempotency import fingerprint_hash
from boxoffice.payments.flows import PAY_SCOPE, _CardWork, reconcile_once
from boxoffice.waiting_room import store
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import (
    assert_invariants,
    balance,
    force,
    gated,
    seat_rows,
    sim_stats,
    simulator,
)
from tests.integration.test_queue_support import make_show as queue_show
from tests.integration.test_queue_support import tick


@pytest.fixture(autouse=True)
async def _invariants_after(runtime):  # type: ignore[no-untyped-def]
    yield
    await assert_invariants(runtime)


async def held(
    client, runtime, user, *, seats=2, price=10_000, hold_seconds=300, starts_in=timedelta(days=30)
):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=4, price=price, hold_seconds=hold_seconds, starts_in=starts_in)
    resp = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:seats]},
        headers=gated(runtime, user, show["show_id"]),
    )
    assert resp.status_code == 201, resp.text
    return show, resp.json()["reservation_id"]


async def pay(client, runtime, user, show_id, rid, method="BALANCE", key="pay-1"):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/payments",
        json={"reservation_id": rid, "method": method},
        headers=gated(runtime, user, show_id, key),
    )


async def reservation_status(runtime, rid):  # type: ignore[no-untyped-def]
    async with runtime.sessions() as s:
        return (
            await s.execute(text("SELECT status FROM reservations WHERE id = :r"), {"r": rid})
        ).scalar_one()


async def payments_of(runtime, rid):  # type: ignore[no-untyped-def]
    async with runtime.sessions() as s:
        rows = await s.execute(
            text("SELECT status, method, failure_code FROM payments WHERE reservation_id = :r ORDER BY id"),
            {"r": rid},
        )
        return [tuple(r) for r in rows]


async def test_balance_payment_confirms_and_replays(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime, balance=50_000)
    show, rid = await held(client, runtime, u)
    resp = await pay(client, runtime, u, show["show_id"], rid)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "SUCCEEDED" and body["amount"] == 20_000 and body["method"] == "BALANCE"
    assert await balance(runtime, u["id"]) == 30_000
    assert await reservation_status(runtime, rid) == "RESERVED"
    statuses = {r["id"]: r["status"] for r in await seat_rows(runtime, show["show_id"])}
    assert [statuses[s] for s in show["seat_ids"][:2]] == ["RESERVED", "RESERVED"]
    again = await pay(client, runtime, u, show["show_id"], rid)
    assert (
        again.status_code == 201 and again.json() == body and again.headers["idempotent-replayed"] == "true"
    )
    other_key = await pay(client, runtime, u, show["show_id"], rid, key="pay-2")
    assert other_key.status_code == 409 and other_key.json()["code"] == "ALREADY_PAID"
    assert await balance(runtime, u["id"]) == 30_000
    got = await client.get(f"/api/payments/{body['payment_id']}", headers=u["headers"])
    assert got.status_code == 200 and got.json()["status"] == "SUCCEEDED"
    # the payment's after-commit effects (one write): the shield marks the seats sold
    for seat_id in show["seat_ids"][:2]:
        assert await runtime.redis.get(seat_key(show["show_id"], seat_id)) == f"{u['id']}:S".encode()
    # the sold seats are refused by the shield and by PostgreSQL
    v = await make_user(runtime)
    resp = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:1]},
        headers=gated(runtime, v, show["show_id"]),
    )
    assert resp.status_code == 409


async def test_payment_errors_change_nothing(client, runtime, clock):  # type: ignore[no-untyped-def]
    poor = await make_user(runtime, balance=5_000)
    show, rid = await held(client, runtime, poor, hold_seconds=60)
    resp = await pay(client, runtime, poor, show["show_id"], rid)
    assert resp.status_code == 402 and resp.json()["code"] == "INSUFFICIENT_BALANCE"
    resp = await client.post(
        "/api/payments",
        json={"reservation_id": rid, "method": "BALANCE"},
        headers=gated(runtime, poor, show["show_id"]),
    )
    assert resp.status_code == 400 and resp.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    resp = await client.post(
        "/api/payments",
        json={"reservation_id": rid, "method": "CASH"},
        headers=gated(runtime, poor, show["show_id"], "x"),
    )
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"] == ["body", "method"]
    stranger = await make_user(runtime, balance=100_000)
    resp = await pay(client, runtime, stranger, show["show_id"], rid)
    assert resp.status_code == 404
    assert await balance(runtime, poor["id"]) == 5_000
    assert await reservation_status(runtime, rid) == "TEMP_RESERVED"
    assert await payments_of(runtime, rid) == []


async def test_payment_after_expiry_is_refused_and_charges_nothing(client, runtime, clock):  # type: ignore[no-untyped-def]
    u = await make_user(runtime, balance=50_000)
    show, rid = await held(client, runtime, u, hold_seconds=30)
    clock.advance(31)  # dead, not yet swept
    resp = await pay(client, runtime, u, show["show_id"], rid)
    assert resp.status_code == 409 and resp.json()["code"] == "HOLD_EXPIRED"
    assert await balance(runtime, u["id"]) == 50_000
    async with simulator(runtime) as url:
        resp = await pay(client, runtime, u, show["show_id"], rid, method="CARD", key="card")
        assert resp.status_code == 409
        assert (await sim_stats(url))["posts"] == 0
    assert await payments_of(runtime, rid) == []


async def test_cancel_and_refund_balance(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime, balance=50_000)
    show, rid = await held(client, runtime, u)
    assert (await pay(client, runtime, u, show["show_id"], rid)).status_code == 201
    resp = await client.delete(f"/api/reservations/{rid}", headers=u["headers"])
    assert resp.status_code == 200 and resp.json()["status"] == "CANCELLED"
    assert await balance(runtime, u["id"]) == 50_000
    assert await payments_of(runtime, rid) == [("REFUNDED", "BALANCE", None)]
    assert all(r["status"] == "AVAILABLE" for r in await seat_rows(runtime, show["show_id"]))
    # the seats are on sale again at once
    v = await make_user(runtime)
    resp = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:2]},
        headers=gated(runtime, v, show["show_id"]),
    )
    assert resp.status_code == 201


async def test_refund_closes_24h_before_the_show(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime, balance=50_000)
    show, rid = await held(client, runtime, u, starts_in=timedelta(hours=23))
    assert (await pay(client, runtime, u, show["show_id"], rid)).status_code == 201
    resp = await client.delete(f"/api/reservations/{rid}", headers=u["headers"])
    assert resp.status_code == 409 and resp.json()["code"] == "REFUND_CLOSED"
    assert await reservation_status(runtime, rid) == "RESERVED"
    assert await balance(runtime, u["id"]) == 30_000


async def test_card_success_and_card_refund(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    show, rid = await held(client, runtime, u)
    async with simulator(runtime) as url:
        resp = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert resp.status_code == 201, resp.text
        assert resp.json()["status"] == "SUCCEEDED" and resp.json()["provider_reference"].startswith("ch_")
        assert await reservation_status(runtime, rid) == "RESERVED"
        stats = await sim_stats(url)
        assert stats["charges"] == 1 and stats["captured_amount"] == 20_000
        async with runtime.sessions() as s:
            key = (
                await s.execute(
                    text("SELECT provider_idempotency_key FROM payments WHERE reservation_id = :r"),
                    {"r": rid},
                )
            ).scalar_one()
        async with httpx.AsyncClient() as provider:
            charge = (await provider.get(f"{url}/charges/{key}")).json()
        assert (charge["amount"], charge["currency"]) == (
            20_000,
            "KRW",
        )  # the show's currency, unconverted
        resp = await client.delete(f"/api/reservations/{rid}", headers=u["headers"])
        assert resp.status_code == 200 and resp.json()["status"] == "CANCELLED"
        stats = await sim_stats(url)
        assert stats["refunded"] == 1 and stats["captured_amount"] == 0
    assert await payments_of(runtime, rid) == [("REFUNDED", "CARD", None)]


async def test_card_declined_keeps_the_hold(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime, balance=50_000)
    show, rid = await held(client, runtime, u)
    async with simulator(runtime) as url:
        await force(url, "fail")
        resp = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert resp.status_code == 402 and resp.json()["code"] == "PAYMENT_DECLINED"
        assert await reservation_status(runtime, rid) == "TEMP_RESERVED"
        assert (await sim_stats(url))["captured_amount"] == 0
    # the hold is still payable: by balance now
    resp = await pay(client, runtime, u, show["show_id"], rid, key="pay-2")
    assert resp.status_code == 201
    assert await payments_of(runtime, rid) == [("FAILED", "CARD", "DECLINED"), ("SUCCEEDED", "BALANCE", None)]


async def test_card_charged_answer_lost_is_retried_with_the_same_key(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    show, rid = await held(client, runtime, u)
    async with simulator(runtime) as url:
        await force(url, "lost")
        resp = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert resp.status_code == 201 and resp.json()["status"] == "SUCCEEDED"
        stats = await sim_stats(url)
        assert stats["posts"] == 2 and stats["charges"] == 1 and stats["captured_amount"] == 20_000
    assert await reservation_status(runtime, rid) == "RESERVED"


async def test_card_timeout_then_reconciliation_confirms_once(client, runtime, clock):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    show, rid = await held(client, runtime, u)
    async with simulator(runtime, timeout_sleep_seconds=1.5) as url:
        await force(url, "timeout")
        resp = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert resp.status_code == 202 and resp.json()["status"] == "PENDING"
        assert await reservation_status(runtime, rid) == "TEMP_RESERVED"
        assert await reconcile_once(runtime) == 0  # too young: its call may still be in flight
        clock.advance(10)
        assert await reconcile_once(runtime) == 1
        assert await reconcile_once(runtime) == 0
        stats = await sim_stats(url)
        assert stats["posts"] == 1 and stats["charges"] == 1 and stats["captured_amount"] == 20_000
    assert await reservation_status(runtime, rid) == "RESERVED"
    assert await payments_of(runtime, rid) == [("SUCCEEDED", "CARD", None)]
    # the stored answer is replayed for the same key; the current state is at GET /api/payments/{id}
    again = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
    assert again.status_code == 202
    got = await client.get(f"/api/payments/{again.json()['payment_id']}", headers=u["headers"])
    assert got.json()["status"] == "SUCCEEDED"


async def test_card_timeout_hold_died_meanwhile_is_refunded(client, runtime, clock):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    show, rid = await held(client, runtime, u, hold_seconds=30)
    async with simulator(runtime, timeout_sleep_seconds=1.5) as url:
        await force(url, "timeout")
        resp = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert resp.status_code == 202
        clock.advance(60)  # the hold dies before anyone learns the charge went through
        assert await reconcile_once(runtime) == 1
        stats = await sim_stats(url)
        assert stats["charges"] == 1 and stats["refunded"] == 1 and stats["captured_amount"] == 0
    assert await payments_of(runtime, rid) == [("REFUNDED", "CARD", "HOLD_EXPIRED")]
    assert await reservation_status(runtime, rid) in ("TEMP_RESERVED", "EXPIRED")


async def test_reconciliation_of_a_charge_that_never_arrived(client, runtime, clock):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    _show, rid = await held(client, runtime, u)
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text(
                "INSERT INTO payments (reservation_id, user_id, amount, method, status, provider_idempotency_key, "
                "created_at, updated_at) VALUES (:r, :u, 20000, 'CARD', 'PENDING', 'never-sent', now(), now())"
            ),
            {"r": rid, "u": u["id"]},
        )
    async with simulator(runtime) as url:
        clock.advance(10)
        assert await reconcile_once(runtime) == 1
        assert (await sim_stats(url))["charges"] == 0
    assert await payments_of(runtime, rid) == [("FAILED", "CARD", "NOT_CHARGED")]
    assert await reservation_status(runtime, rid) == "TEMP_RESERVED"


async def _crashed_claim(runtime, user_id, rid):  # type: ignore[no-untyped-def]
    """The claim a card payment commits first, as a crash right after it leaves it (IN_PROGRESS)."""
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text(
                "INSERT INTO idempotency_keys (user_id, scope, key, request_hash, state, created_at, expires_at) "
                "VALUES (:u, :scope, 'pay-1', :hash, 'IN_PROGRESS', now(), now() + interval '1 day')"
            ),
            {
                "u": user_id,
                "scope": PAY_SCOPE,
                "hash": fingerprint_hash({"reservation_id": rid, "method": "CARD"}),
            },
        )


async def test_card_retry_after_a_crash_before_the_provider_call_finishes_it(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    show, rid = await held(client, runtime, u)
    await _crashed_claim(runtime, u["id"], rid)
    pending = await _CardWork(runtime, u["id"], rid, "pay-1")._pending()  # step 1 committed, then the crash
    async with simulator(runtime) as url:
        retry = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert retry.status_code == 201, retry.text
        assert retry.json()["payment_id"] == pending["id"] and retry.json()["status"] == "SUCCEEDED"
        again = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == retry.json()
        assert (await sim_stats(url))["charges"] == 1
    assert await payments_of(runtime, rid) == [("SUCCEEDED", "CARD", None)]
    assert await reservation_status(runtime, rid) == "RESERVED"


async def test_card_retry_after_a_crash_before_the_answer_was_stored_replays_it(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    show, rid = await held(client, runtime, u)
    async with simulator(runtime) as url:
        first = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert first.status_code == 201
        async with runtime.sessions() as s, s.begin():  # as if the process died before the last step
            await s.execute(
                text(
                    "UPDATE idempotency_keys SET state = 'IN_PROGRESS', response_status = NULL, "
                    "response_body = NULL WHERE key = 'pay-1'"
                )
            )
        retry = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert retry.status_code == 201, retry.text
        assert retry.json() == first.json()
        stats = await sim_stats(url)
        assert stats["charges"] == 1 and stats["captured_amount"] == 20_000
    assert await payments_of(runtime, rid) == [("SUCCEEDED", "CARD", None)]


async def test_card_declined_then_retried_with_the_same_key_tries_again(client, runtime):  # type: ignore[no-untyped-def]
    u = await make_user(runtime)
    show, rid = await held(client, runtime, u)
    async with simulator(runtime) as url:
        await force(url, "fail")
        declined = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert declined.status_code == 402  # errors are not stored: the claim is released
        retry = await pay(client, runtime, u, show["show_id"], rid, method="CARD")
        assert retry.status_code == 201 and retry.json()["status"] == "SUCCEEDED"
    assert await payments_of(runtime, rid) == [("FAILED", "CARD", "DECLINED"), ("SUCCEEDED", "CARD", None)]


async def test_own_live_hold_stays_payable_and_cancellable_after_the_queue_token_expired(
    client, runtime, clock
):  # type: ignore[no-untyped-def]
    """The admission token gates choosing seats, not paying for them: a 60 s token and a 10 min
    hold; at minute 5 the token is long dead and the hold alive, so paying needs only the login."""
    from datetime import UTC, datetime

    from boxoffice.waiting_room.tokens import issue_queue_token

    fan = await make_user(runtime, balance=50_000)
    show = await make_show(runtime, seats=4, hold_seconds=600)
    sid = show["show_id"]
    short, _ = issue_queue_token(
        runtime.settings, user_id=fan["id"], show_id=sid, ticket=1, ttl_seconds=60, now=datetime.now(UTC)
    )
    gate = {**fan["headers"], "X-Queue-Token": short}
    first = await client.post(
        "/api/reservations", json={"show_id": sid, "seat_ids": show["seat_ids"][:1]}, headers=gate
    )
    second_fan = await make_user(runtime, balance=50_000)
    other = await client.post(
        "/api/reservations",
        json={"show_id": sid, "seat_ids": show["seat_ids"][1:2]},
        headers=gated(runtime, second_fan, sid),
    )
    assert first.status_code == 201 and other.status_code == 201
    clock.advance(300)  # token: expired 4 minutes ago (beyond any leeway); hold: 5 minutes left
    assert (
        await client.post(
            "/api/reservations", json={"show_id": sid, "seat_ids": show["seat_ids"][2:3]}, headers=gate
        )
    ).json()["code"] == "QUEUE_TOKEN_INVALID"  # choosing more seats is still gated
    paid = await client.post(
        "/api/payments",
        json={"reservation_id": first.json()["reservation_id"], "method": "BALANCE"},
        headers={**fan["headers"], "Idempotency-Key": "late-pay"},
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["reservation_status"] == "RESERVED"
    assert await balance(runtime, fan["id"]) == 50_000 - 10_000
    cancelled = await client.delete(
        f"/api/reservations/{other.json()['reservation_id']}", headers=second_fan["headers"]
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert await reservation_status(runtime, first.json()["reservation_id"]) == "RESERVED"


async def test_a_payment_frees_the_buyers_queue_place(client, runtime, clock):  # type: ignore[no-untyped-def]
    """The payment's after-commit effects (sold marks, seat map, the lease's release: one write)
    all land: the buyer no longer counts toward the show's admission cap."""
    show = await queue_show(runtime, seats=4, admit_per_second=1, token_ttl=60)
    buyer = await make_user(runtime, balance=50_000)
    assert (await client.post("/api/queue", json=show["body"], headers=buyer["headers"])).status_code == 200
    await tick(runtime, show["id"])
    clock.advance(1)
    await tick(runtime, show["id"])
    assert await store.active_users(runtime.redis, show["id"]) == [buyer["id"]]
    hold = await client.post(
        "/api/reservations",
        json={"show_id": show["id"], "seat_ids": show["seat_ids"][:1]},
        headers=gated(runtime, buyer, show["id"]),
    )
    assert hold.status_code == 201, hold.text
    paid = await pay(client, runtime, buyer, show["id"], hold.json()["reservation_id"])
    assert paid.status_code == 201, paid.text
    assert await store.active_users(runtime.redis, show["id"]) == []
    assert await runtime.redis.get(seat_key(show["id"], show["seat_ids"][0])) == f"{buyer['id']}:S".encode()
