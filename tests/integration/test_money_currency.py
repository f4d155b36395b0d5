"""Money in the show's currency (issue 22, step 1): the 0005 migration on a database of the old
shape, the balance paying only its own currency, and one amount read the same on the pages, in both
CSVs, in both mails and in the REST and gRPC bodies, for KRW (no minor unit) and EUR (cents)."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from boxoffice.db.migrate import downgrade, upgrade
from boxoffice.db.uow import plain_url
from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.kit.money import format_money
from boxoffice.mail.flows import send_due
from boxoffice.ops.backends.datadir import Backends
from boxoffice.web.session import ACCESS_COOKIE
from tests.conftest import _create_database, _drop_database, _with_database
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.helpers.smtp import parts, smtp
from tests.integration.grpc_support import meta, ticket_stub
from tests.integration.test_booking_support import assert_invariants, balance, gated

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def test_0009_labels_old_rows_without_loss_and_new_rows_default_to_won(backends: Backends) -> None:
    name = f"bo_money_{uuid.uuid4().hex[:8]}"
    await _create_database(backends.database_url, name)
    url = _with_database(backends.database_url, name)
    try:
        await asyncio.to_thread(upgrade, url, "0008_waitlist")  # the old shape: amounts without a currency
        conn = await asyncpg.connect(plain_url(url))
        try:
            user = await conn.fetchval(
                "INSERT INTO users (email, password_hash, name, balance) VALUES ('a@x.test', 'h', 'A', 123457) "
                "RETURNING id"
            )
            venue = await conn.fetchval("INSERT INTO venues (name) VALUES ('V') RETURNING id")
            concert = await conn.fetchval(
                "INSERT INTO concerts (venue_id, name, artist) VALUES ($1, 'C', 'X') RETURNING id", venue
            )
            show = await conn.fetchval(
                "INSERT INTO shows (concert_id, starts_at, sale_opens_at) "
                "VALUES ($1, now() + interval '30 days', now()) RETURNING id",
                concert,
            )
            await asyncio.to_thread(upgrade, url)
            got = await conn.fetchrow(
                "SELECT u.balance, u.balance_currency, s.currency FROM users u, shows s "
                "WHERE u.id = $1 AND s.id = $2",
                user,
                show,
            )
            # Every integer unchanged, labelled with a two-decimal currency: 1,234.57 stays 1,234.57.
            assert dict(got) == {"balance": 123457, "balance_currency": "USD", "currency": "USD"}
            new_user = await conn.fetchval(
                "INSERT INTO users (email, password_hash, name) VALUES ('b@x.test', 'h', 'B') RETURNING balance_currency"
            )
            new_show = await conn.fetchval(
                "INSERT INTO shows (concert_id, starts_at, sale_opens_at) "
                "VALUES ($1, now() + interval '30 days', now()) RETURNING currency",
                concert,
            )
            assert (new_user, new_show) == ("KRW", "KRW")
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE shows SET currency = 'won' WHERE id = $1", show)
            await asyncio.to_thread(downgrade, url, "0008_waitlist")
            columns = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE column_name LIKE '%currency'"
            )
            assert columns == []
            assert await conn.fetchval("SELECT balance FROM users WHERE id = $1", user) == 123457
        finally:
            await conn.close()
    finally:
        await _drop_database(backends.database_url, name)


async def _hold(client: httpx.AsyncClient, runtime: Any, fan: dict[str, Any], show: dict[str, Any]) -> int:
    resp = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:1]},
        headers=gated(runtime, fan, show["show_id"]),
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["reservation_id"])


async def _pay(
    client: httpx.AsyncClient, runtime: Any, fan: dict[str, Any], show_id: int, rid: int
) -> httpx.Response:
    return await client.post(
        "/api/payments",
        json={"reservation_id": rid, "method": "BALANCE"},
        headers=gated(runtime, fan, show_id, f"pay-{rid}"),
    )


async def test_a_balance_pays_only_for_shows_in_its_own_currency(client, runtime) -> None:  # type: ignore[no-untyped-def]
    fan = await make_user(runtime, balance=100_000, currency="EUR")
    won_show = await make_show(runtime, seats=2, price=50_000, currency="KRW")
    rid = await _hold(client, runtime, fan, won_show)
    refused = await _pay(client, runtime, fan, won_show["show_id"], rid)
    assert refused.status_code == 409 and refused.json()["code"] == "CURRENCY_MISMATCH", refused.text
    assert await balance(runtime, fan["id"]) == 100_000
    async with runtime.sessions() as s:
        status = (
            await s.execute(text("SELECT status FROM reservations WHERE id = :r"), {"r": rid})
        ).scalar_one()
        payments = (
            await s.execute(text("SELECT count(*) FROM payments WHERE reservation_id = :r"), {"r": rid})
        ).scalar_one()
    assert (status, payments) == ("TEMP_RESERVED", 0)
    euro_show = await make_show(runtime, seats=2, price=8_050, currency="EUR")
    rid2 = await _hold(client, runtime, fan, euro_show)
    paid = await _pay(client, runtime, fan, euro_show["show_id"], rid2)
    assert paid.status_code == 201 and paid.json()["amount"] == 8_050, paid.text
    assert await balance(runtime, fan["id"]) == 100_000 - 8_050
    await assert_invariants(runtime)


@pytest.mark.parametrize(
    ("currency", "price", "shown"),
    [("KRW", 220_000, "₩220,000"), ("EUR", 8_050, "€80.50")],
)
async def test_one_amount_reads_the_same_on_the_page_in_the_csv_the_mail_and_the_api(  # type: ignore[no-untyped-def]
    app,
    client,
    runtime,
    grpc_target,
    inbox,
    currency,
    price,
    shown,
) -> None:
    """Every door that carries the order's amount carries its currency, and read through kit.money
    they all say `shown`: the fan's pages, the REST and gRPC bodies, both CSVs, both mails."""
    handler, port = inbox
    fan = await make_user(runtime, balance=price * 3, currency=currency)
    admin = await make_user(runtime, role="ADMIN")
    show = await make_show(runtime, seats=2, price=price, currency=currency)
    held = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:1]},
        headers=gated(runtime, fan, show["show_id"]),
    )
    assert held.status_code == 201, held.text
    assert (held.json()["total_price"], held.json()["currency"]) == (price, currency)
    rid = int(held.json()["reservation_id"])
    # the page, before paying: the seat, the total and the balance
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as page:
        page.cookies.set(ACCESS_COOKIE, fan["token"])
        checkout = await page.get(f"/reservations/{rid}/checkout")
        assert checkout.status_code == 200, checkout.text[:500]
        assert f"Total: {shown}" in checkout.text
        assert (f"{'₩660,000' if currency == 'KRW' else '€241.50'}") in checkout.text  # the balance
        paid = await _pay(client, runtime, fan, show["show_id"], rid)
        assert paid.status_code == 201, paid.text
        tickets = await page.get("/tickets")
        assert shown in tickets.text
    # the API: integers in the minor unit, and the currency to read them with, on every body
    api_show = (await client.get(f"/api/shows/{show['show_id']}")).json()
    assert api_show["currency"] == currency and price in api_show["prices"].values()
    assert (paid.json()["amount"], paid.json()["currency"]) == (price, currency)
    payment = (await client.get(f"/api/payments/{paid.json()['payment_id']}", headers=fan["headers"])).json()
    assert (payment["amount"], payment["currency"]) == (price, currency)
    reservation = (await client.get(f"/api/reservations/{rid}", headers=fan["headers"])).json()
    assert (reservation["total_price"], reservation["currency"]) == (price, currency)
    listed = (await client.get("/api/reservations", headers=fan["headers"])).json()["items"]
    assert [(r["total_price"], r["currency"]) for r in listed] == [(price, currency)]
    profile = (await client.get("/api/users/me", headers=fan["headers"])).json()
    assert (profile["balance"], profile["balance_currency"]) == (price * 2, currency)
    # gRPC: the same integers with the same currency (a second seat bought over gRPC)
    async with ticket_stub(grpc_target) as stub:
        got = await stub.GetReservation(pb.ReservationRef(reservation_id=rid), metadata=meta(fan))
        assert (got.total_price, got.currency) == (price, currency)
        gate = meta(fan, runtime=runtime, show_id=show["show_id"])
        hold = await stub.Hold(
            pb.HoldRequest(show_id=show["show_id"], seat_ids=show["seat_ids"][1:]), metadata=gate
        )
        assert (hold.total_price, hold.currency) == (price, currency)
        pay = await stub.Pay(
            pb.PayRequest(reservation_id=hold.reservation_id, method=pb.PAYMENT_METHOD_BALANCE),
            metadata=meta(fan, runtime=runtime, show_id=show["show_id"], key=uuid.uuid4().hex),
        )
        assert (pay.amount, pay.currency) == (price, currency)
    assert {format_money(a, c) for a, c in [(got.total_price, got.currency), (pay.amount, pay.currency)]} == {
        shown
    }
    assert format_money(reservation["total_price"], reservation["currency"]) == shown
    # the CSV, both doors: the integer, its currency, and the formatted amount
    resp = await client.get(f"/api/admin/shows/{show['show_id']}/sales.csv", headers=admin["headers"])
    api_rows = list(csv.DictReader(io.StringIO(resp.text)))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as console:
        console.cookies.set(ACCESS_COOKIE, admin["token"])
        resp = await console.get(f"/admin/shows/{show['show_id']}/sales.csv")
        assert resp.status_code == 200, resp.text[:300]
    console_rows = list(csv.DictReader(io.StringIO(resp.text)))
    for rows_ in (api_rows, console_rows):
        assert [(int(r["amount"]), r["currency"], r["amount_display"]) for r in rows_] == [
            (price, currency, shown)
        ] * 2
    # the console's API: the fan view and the dashboard name the currency of what they count
    found = (
        await client.get("/api/admin/fans", params={"email": fan["email"]}, headers=admin["headers"])
    ).json()
    assert (found["user"]["balance"], found["user"]["balance_currency"]) == (price, currency)
    assert {(r["total_price"], r["currency"]) for r in found["reservations"]} == {(price, currency)}
    assert {(p["amount"], p["currency"]) for p in found["payments"]} == {(price, currency)}
    frame = (
        await client.get(f"/api/admin/shows/{show['show_id']}/dashboard", headers=admin["headers"])
    ).json()
    assert (frame["sales"]["revenue"], frame["currency"]) == (2 * price, currency)
    # the mails: the order confirmation says what was paid, the refund what was refunded
    async with smtp(runtime, port):
        await send_due(runtime)
    confirmations = [m for _, m in handler.messages if str(m["Subject"]).startswith("Your tickets")]
    assert len(confirmations) == 2
    for mail in confirmations:
        assert f"Paid: {shown}" in parts(mail, "text/plain")[0].get_payload(decode=True).decode()
        assert f"Paid: {shown}" in parts(mail, "text/html")[0].get_payload(decode=True).decode()
    assert (await client.delete(f"/api/reservations/{rid}", headers=fan["headers"])).status_code == 200
    async with smtp(runtime, port):
        await send_due(runtime)
    refund = next(m for _, m in handler.messages if str(m["Subject"]).startswith("Refunded"))
    assert f"Refunded: {shown} to your Boxoffice balance." in refund.get_payload(decode=True).decode()
    await assert_invariants(runtime)
