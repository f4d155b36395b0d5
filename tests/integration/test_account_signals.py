"""Signals of one person behind many accounts on the console's fan view, from real data: the same
browser (device cookie at login), the same payment card (the simulator's fingerprint), the same
email pattern. Flagged for the promoter; the flagged accounts keep buying."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from boxoffice.admin import repository, rules
from boxoffice.auth.service import ensure_account
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_admin_forms import console  # noqa: F401 - the promoter's session
from tests.integration.test_booking_support import gated, simulator

PASSWORD = "a fine long password"
CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def _signals(client: httpx.AsyncClient, admin: dict[str, Any], email: str) -> set[tuple[str, str]]:
    found = await client.get("/api/admin/fans", params={"email": email}, headers=admin["headers"])
    assert found.status_code == 200, found.text
    return {(s["kind"], s["email"]) for s in found.json()["signals"]}


async def test_the_email_pattern_in_sql_is_the_rule(runtime: Runtime) -> None:
    async with runtime.sessions() as s:
        for email in (
            "j.smith+tix2@Example.com",
            "JSmith7@example.com",
            "a.b.c+x+y@d.e",
            "plain@x.test",
            "9@x.y",
        ):
            assert await repository.email_pattern_in_sql(s, email) == rules.email_pattern(email), email


async def test_same_email_pattern_is_flagged(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tag = "".join(chr(97 + int(c, 16)) for c in uuid.uuid4().hex[:8])  # letters: no digits to strip
    admin = await make_user(runtime, role="ADMIN")
    main = await make_user(runtime, email=f"jane.doe{tag}+tix@example.test")
    twin = await make_user(runtime, email=f"janedoe{tag}7@example.test")
    await make_user(runtime, email=f"janedoe{tag}@elsewhere.test")  # another domain
    await make_user(runtime, email=f"john{tag}@example.test")
    assert await _signals(client, admin, main["email"]) == {("email", twin["email"])}
    assert await _signals(client, admin, twin["email"]) == {("email", main["email"])}


async def test_same_card_fingerprint_is_flagged_and_nobody_is_blocked(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    admin = await make_user(runtime, role="ADMIN")
    show = await make_show(runtime, seats=10)
    fans = [await make_user(runtime, email=f"card{i}-{uuid.uuid4().hex[:6]}@cards.test") for i in range(3)]
    cards = ["4242424242424242", "4242 4242 4242 4242".replace(" ", ""), "5555555555554444"]
    async with simulator(runtime):
        for i, (fan, card) in enumerate(zip(fans, cards, strict=True)):
            held = await client.post(
                "/api/reservations",
                json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][i : i + 1]},
                headers=gated(runtime, fan, show["show_id"]),
            )
            assert held.status_code == 201
            paid = await client.post(
                "/api/payments",
                json={"reservation_id": held.json()["reservation_id"], "method": "CARD", "card_number": card},
                headers={**fan["headers"], "Idempotency-Key": f"card-{i}"},
            )
            assert paid.status_code == 201, paid.text  # flagged, never blocked
    async with runtime.sessions() as s:
        stored = (
            await s.execute(
                text("SELECT card_fingerprint FROM payments WHERE user_id = :u"), {"u": fans[0]["id"]}
            )
        ).scalar_one()
    assert stored.startswith("fp_") and "4242" not in stored  # the fingerprint, never the number
    assert ("card", fans[1]["email"]) in await _signals(client, admin, fans[0]["email"])
    assert not {kind for kind, _ in await _signals(client, admin, fans[2]["email"])} & {"card"}
    bad = await client.post(
        "/api/payments",
        json={"reservation_id": 1, "method": "CARD", "card_number": "4242-4242"},
        headers=fans[0]["headers"],
    )
    assert bad.status_code == 422


async def _web_login(c: httpx.AsyncClient, email: str) -> None:
    page = await c.get("/login")
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    done = await c.post(
        "/login", data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/"}
    )
    assert done.status_code == 303, done.text


async def test_same_browser_is_flagged_on_the_console(  # type: ignore[no-untyped-def]
    app,
    runtime: Runtime,
    console: httpx.AsyncClient,  # noqa: F811 - the fixture imported above
) -> None:
    tag = uuid.uuid4().hex[:6]
    emails = [f"{name}{tag}@devices.test" for name in ("ann", "bob", "cat")]
    async with runtime.sessions() as s, s.begin():
        for email in emails:
            await ensure_account(
                s, runtime.settings, email=email, password=PASSWORD, name="Fan", initial_balance=0
            )
    transport = httpx.ASGITransport(app=app)
    html = {"Accept": "text/html"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=html) as shared:
        await _web_login(shared, emails[0])
        device = shared.cookies.get("bo_dev")
        assert device and len(device) == 32
        shared.cookies.delete("bo_access")
        shared.cookies.delete("bo_refresh")
        await _web_login(shared, emails[1])  # the same browser, another account
        assert shared.cookies.get("bo_dev") == device
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=html) as other:
        await _web_login(other, emails[2])
    async with runtime.sessions() as s:
        hashes = [r[0] for r in await s.execute(text("SELECT device_hash FROM fan_devices"))]
    assert rules.device_hash(device) in hashes and device not in hashes
    page = await console.get("/admin/fans", params={"email": emails[0]})
    assert page.status_code == 200
    assert 'data-signal="device"' in page.text and emails[1] in page.text and emails[2] not in page.text
    assert "not blocked" in page.text
    calm = await console.get("/admin/fans", params={"email": emails[2]})
    assert "No other account shares" in calm.text


async def test_a_card_paid_over_grpc_is_fingerprinted_too(
    client: httpx.AsyncClient, runtime: Runtime, grpc_target: str
) -> None:
    from boxoffice.grpc import ticket_pb2 as pb
    from tests.integration.grpc_support import meta, ticket_stub

    show = await make_show(runtime, seats=2)
    fan = await make_user(runtime)
    held = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:1]},
        headers=gated(runtime, fan, show["show_id"]),
    )
    assert held.status_code == 201
    async with simulator(runtime), ticket_stub(grpc_target) as stub:
        paid = await stub.Pay(
            pb.PayRequest(
                reservation_id=held.json()["reservation_id"],
                method=pb.PAYMENT_METHOD_CARD,
                card_number="4000056655665556",
            ),
            metadata=meta(fan, key="grpc-card"),
        )
    assert paid.status == pb.PAYMENT_STATUS_SUCCEEDED
    async with runtime.sessions() as s:
        fp = (
            await s.execute(
                text("SELECT card_fingerprint FROM payments WHERE user_id = :u"), {"u": fan["id"]}
            )
        ).scalar_one()
    assert fp.startswith("fp_")
