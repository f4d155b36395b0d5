"""Mails after commit, through a real SMTP server (aiosmtpd) as the edge, sent by the mail_sender
job: the order confirmation (QR codes inline that decode to the tickets, the PDF attached, an .ics
in the venue's time zone), the refund mail, retries and the dead-letter count when SMTP is dead,
SKIPPED when SMTP is off; the password-reset flow (same answer for any address, signed, short-lived,
single-use even when used twice at once)."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import icalendar
import pypdfium2
import zxingcpp
from PIL import Image
from sqlalchemy import text

from boxoffice.auth.service import ensure_account
from boxoffice.mail.flows import send_due
from boxoffice.runtime import Runtime
from tests.helpers.net import free_port
from tests.helpers.smtp import parts, smtp
from tests.integration.test_tickets import bought, rows


async def test_order_confirmation_carries_the_tickets_pdf_and_ics(client, runtime, inbox):  # type: ignore[no-untyped-def]
    handler, port = inbox
    fan, show, rid = await bought(client, runtime, seats=2)
    tickets = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"]
    queued = await rows(runtime, "SELECT kind, status, reservation_id FROM mail_outbox")
    assert queued == [
        {"kind": "ORDER_CONFIRMED", "status": "PENDING", "reservation_id": rid}
    ]  # with the payment
    assert handler.messages == []  # nothing is sent inside the payment
    async with smtp(runtime, port):
        assert await send_due(runtime) == 1
        assert await send_due(runtime) == 0  # sent once
    assert len(handler.messages) == 1
    rcpt, msg = handler.messages[0]
    assert rcpt == [fan["email"]] and msg["To"] == fan["email"]
    assert "Your tickets: Gig" in msg["Subject"]
    text_body = parts(msg, "text/plain")[0].get_payload(decode=True).decode()
    for t in tickets:
        assert t["code"] in text_body and f"https://tickets.example/tickets/{t['ticket_id']}" in text_body
    html = parts(msg, "text/html")[0].get_payload(decode=True).decode()
    images = parts(msg, "image/png")
    assert len(images) == 2
    decoded = sorted(
        zxingcpp.read_barcodes(Image.open(io.BytesIO(p.get_payload(decode=True))))[0].text for p in images
    )
    assert decoded == sorted(t["payload"] for t in tickets)
    for image in images:  # each inline image is the one the HTML refers to
        assert f"cid:{image['Content-ID'].strip('<>')}" in html
    pdf = parts(msg, "application/pdf")[0]
    assert pdf.get_filename() == f"tickets-{rid}.pdf"
    assert len(pypdfium2.PdfDocument(pdf.get_payload(decode=True))) == 2
    ics = parts(msg, "text/calendar")[0]
    cal = icalendar.Calendar.from_ical(ics.get_payload(decode=True))
    event = cal.walk("VEVENT")[0]
    starts = event.decoded("dtstart")
    assert str(starts.tzinfo) == "Asia/Seoul" and starts.utcoffset().total_seconds() == 9 * 3600
    show_time = datetime.fromisoformat(tickets[0]["starts_at_local"]).replace(microsecond=0)  # iCal: seconds
    assert starts == show_time and starts.utcoffset() == show_time.utcoffset()
    assert "Gig" in str(event["summary"]) and str(event["location"]) == "Hall"
    assert cal.walk("VTIMEZONE")[0]["tzid"] == "Asia/Seoul"
    sent = await rows(runtime, "SELECT status, attempts, subject FROM mail_outbox")
    assert sent[0]["status"] == "SENT" and sent[0]["attempts"] == 1
    assert runtime.metrics.mail_sent.labels("ORDER_CONFIRMED")._value.get() >= 1
    del show


async def test_refund_mail_says_what_was_refunded(client, runtime, inbox):  # type: ignore[no-untyped-def]
    handler, port = inbox
    fan, _show, rid = await bought(client, runtime, seats=2)
    assert (await client.delete(f"/api/reservations/{rid}", headers=fan["headers"])).status_code == 200
    async with smtp(runtime, port):
        assert await send_due(runtime) == 2
    subjects = {m["Subject"]: m for _, m in handler.messages}
    refund = subjects[f"Refunded: order #{rid} (Gig)"]
    body = refund.get_payload(decode=True).decode()
    assert "Refunded: ₩20,000 to your Boxoffice balance." in body
    assert "A · Row 1 · Seat 1" in body and "A · Row 1 · Seat 2" in body and "void" in body


async def test_a_dead_smtp_server_never_blocks_a_payment_and_ends_in_dead_letters(client, runtime, clock):  # type: ignore[no-untyped-def]
    closed = free_port()  # nobody listens
    dead_before = runtime.metrics.mail_dead_letters.labels("ORDER_CONFIRMED")._value.get()
    async with smtp(runtime, closed, mail_max_attempts=2, mail_retry_base_seconds=60):
        _fan, _show, _rid = await bought(client, runtime, seats=1)  # paid although SMTP is dead
        assert await send_due(runtime) == 0
        first = (await rows(runtime, "SELECT status, attempts, next_attempt_at FROM mail_outbox"))[0]
        assert first["status"] == "PENDING" and first["attempts"] == 1
        assert await send_due(runtime) == 0  # not due yet: backing off
        assert (await rows(runtime, "SELECT attempts FROM mail_outbox"))[0]["attempts"] == 1
        clock.advance(61)
        assert await send_due(runtime) == 0
    last = (await rows(runtime, "SELECT status, attempts, last_error FROM mail_outbox"))[0]
    assert last == {"status": "DEAD", "attempts": 2, "last_error": "smtp"}
    assert runtime.metrics.mail_dead_letters.labels("ORDER_CONFIRMED")._value.get() == dead_before + 1
    scrape = await client.get("/metrics")
    assert "boxoffice_mail_dead_letters_total" in scrape.text


async def test_smtp_off_marks_mails_skipped(client, runtime):  # type: ignore[no-untyped-def]
    await bought(client, runtime, seats=1)
    async with smtp(runtime, None):
        assert await send_due(runtime) == 0
    assert (await rows(runtime, "SELECT status FROM mail_outbox")) == [{"status": "SKIPPED"}]


async def _account(runtime: Runtime, email_: str, password: str) -> int:
    async with runtime.sessions() as s, s.begin():
        return await ensure_account(s, runtime.settings, email=email_, password=password, name="Reset Fan")


def _token(msg: Message) -> str:
    body = msg.get_payload(decode=True).decode()
    link = next(line for line in body.splitlines() if line.startswith("https://"))
    assert link.startswith("https://tickets.example/reset-password?token=")
    return parse_qs(urlsplit(link).query)["token"][0]


async def test_password_reset_is_signed_short_lived_and_single_use(client, runtime, inbox, clock):  # type: ignore[no-untyped-def]
    handler, port = inbox
    await _account(runtime, "forgot@example.test", "the old password")
    known = await client.post("/api/auth/password-reset", json={"email": "Forgot@Example.test"})
    unknown = await client.post("/api/auth/password-reset", json={"email": "nobody@example.test"})
    assert known.status_code == unknown.status_code == 202 and known.json() == unknown.json()
    assert len(await rows(runtime, "SELECT id FROM mail_outbox")) == 1  # for the account only
    async with smtp(runtime, port):
        await send_due(runtime)
    assert [rcpt for rcpt, _ in handler.messages] == [["forgot@example.test"]]
    token = _token(handler.messages[0][1])
    # tampered: refused, nothing changes
    body, mac = token.split(".")
    for bad in (f"{body}.{mac[:-2]}AA", f"{body[:-2]}xx.{mac}", "nonsense", "a.b"):
        resp = await client.post(
            "/api/auth/password-reset/confirm", json={"token": bad, "password": "a new password"}
        )
        assert resp.status_code == 400 and resp.json()["code"] == "INVALID_RESET_TOKEN", bad
    resp = await client.post("/api/auth/password-reset/confirm", json={"token": token, "password": "short"})
    assert resp.status_code == 422
    # used twice at once: exactly one succeeds
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/auth/password-reset/confirm", json={"token": token, "password": f"new password {i}"}
            )
            for i in range(8)
        )
    )
    assert sorted(a.status_code for a in answers) == [204] + [400] * 7
    winner = next(i for i, a in enumerate(answers) if a.status_code == 204)
    login = await client.post(
        "/api/auth/login", json={"email": "forgot@example.test", "password": f"new password {winner}"}
    )
    assert login.status_code == 200
    old = await client.post(
        "/api/auth/login", json={"email": "forgot@example.test", "password": "the old password"}
    )
    assert old.status_code == 401
    again = await client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "yet another one"}
    )
    assert again.status_code == 400 and again.json()["code"] == "INVALID_RESET_TOKEN"
    # short-lived: a fresh link is refused once its time is up
    await client.post("/api/auth/password-reset", json={"email": "forgot@example.test"})
    async with smtp(runtime, port):
        await send_due(runtime)
    fresh = _token(handler.messages[-1][1])
    clock.advance(runtime.settings.password_reset_ttl_seconds + 1)
    late = await client.post(
        "/api/auth/password-reset/confirm", json={"token": fresh, "password": "too late now"}
    )
    assert late.status_code == 400 and late.json()["code"] == "INVALID_RESET_TOKEN"
    async with runtime.sessions() as s:
        count = (
            await s.execute(text("SELECT count(*) FROM mail_outbox WHERE kind = 'PASSWORD_RESET'"))
        ).scalar_one()
    assert count == 2
