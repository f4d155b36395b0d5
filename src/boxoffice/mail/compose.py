"""The product's mails as MIME messages (pure: values in, EmailMessage out):

- ORDER_CONFIRMED: the tickets (text and HTML, each ticket's QR code inline as a PNG part), the
  order's PDF attached, and an .ics calendar entry (icalendar) for the show in the venue's time zone;
- REFUNDED: what was refunded (amount, how, which seats);
- PASSWORD_RESET: the signed, single-use, short-lived link.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from html import escape
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from boxoffice.config import Settings
from boxoffice.kit.money import format_money
from boxoffice.kit.timefmt import local_time
from boxoffice.tickets.pdf import tickets_pdf
from boxoffice.tickets.qr import qr_png

# A show's length is not in the catalog: the calendar entry blocks three hours.
SHOW_LENGTH = timedelta(hours=3)
MAIL_LOCALE = "en"  # the mails' language until they are translated (issue 22, step 3)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _base(settings: Settings, *, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Message-ID"] = make_msgid(domain="boxoffice.local")
    return msg


def show_calendar(tickets: list[dict[str, Any]], *, reservation_id: int, now: datetime) -> bytes:
    """One VEVENT for the show, its times in the venue's time zone (with its VTIMEZONE)."""
    first = tickets[0]
    tz = _zone(first["time_zone"])
    starts = first["starts_at"].astimezone(tz)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Boxoffice//Tickets//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"order-{reservation_id}-show-{first['show_id']}@boxoffice")
    event.add("summary", f"{first['concert']} ({first['artist']})")
    event.add("dtstart", starts)
    event.add("dtend", starts + SHOW_LENGTH)
    event.add("dtstamp", now)
    event.add("location", first["venue"])
    seats = ", ".join(t["seat"] for t in tickets)
    event.add("description", f"Boxoffice order #{reservation_id}: {seats}")
    cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def order_confirmed(
    settings: Settings,
    *,
    to: str,
    name: str,
    reservation_id: int,
    tickets: list[dict[str, Any]],
    now: datetime,
    paid: tuple[int, str] | None = None,
) -> EmailMessage:
    """`paid`: (amount in minor units, the show's ISO 4217 currency), formatted by kit.money."""
    first = tickets[0]
    total = format_money(paid[0], paid[1], MAIL_LOCALE) if paid is not None else ""
    subject = f"Your tickets: {first['concert']}, {first['starts_text']}"
    msg = _base(settings, to=to, subject=subject)
    base = settings.public_base_url.rstrip("/")
    lines = [
        f"Hello {name},",
        "",
        f"your order #{reservation_id} is confirmed. Your tickets for {first['concert']}:",
        f"{first['starts_text']} at {first['venue']}",
        "",
    ]
    for t in tickets:
        lines += [f"- {t['seat']} · code {t['code']} · {base}/tickets/{t['ticket_id']}"]
    lines += [
        *([f"Paid: {total}"] if total else []),
        "",
        "Show the QR code (or type the code) at the door. The PDF and a calendar entry are attached.",
    ]
    msg.set_content("\n".join(lines) + "\n")
    cids = [make_msgid(domain="boxoffice.local") for _ in tickets]
    cards = "".join(
        f"<li><p><strong>{escape(t['seat'])}</strong><br>Holder: {escape(t['holder'])}<br>"
        f"Code: <code>{escape(t['code'])}</code></p>"
        f'<img src="cid:{cid[1:-1]}" alt="QR code for {escape(t["seat"])}" width="200" height="200"></li>'
        for t, cid in zip(tickets, cids, strict=True)
    )
    html = (
        f"<p>Hello {escape(name)},</p><p>your order #{reservation_id} is confirmed.</p>"
        f"<h1>{escape(first['concert'])}</h1><p>{escape(first['starts_text'])} · {escape(first['venue'])}</p>"
        f"<ul>{cards}</ul>{f'<p>Paid: {escape(total)}</p>' if total else ''}"
        "<p>Show the QR code (or type the code) at the door.</p>"
    )
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None
    for t, cid in zip(tickets, cids, strict=True):
        html_part.add_related(qr_png(t["payload"], scale=5), "image", "png", cid=cid)
    msg.add_attachment(
        tickets_pdf(tickets, title=f"Boxoffice order {reservation_id}"),
        maintype="application",
        subtype="pdf",
        filename=f"tickets-{reservation_id}.pdf",
    )
    msg.add_attachment(
        show_calendar(tickets, reservation_id=reservation_id, now=now),
        maintype="text",
        subtype="calendar",
        filename="show.ics",
        params={"method": "PUBLISH"},
    )
    return msg


def refunded(settings: Settings, *, to: str, name: str, refund: dict[str, Any]) -> EmailMessage:
    tz = _zone(refund["time_zone"])
    starts = refund["starts_at"].astimezone(tz)
    subject = f"Refunded: order #{refund['reservation_id']} ({refund['concert']})"
    msg = _base(settings, to=to, subject=subject)
    seats = "\n".join(f"- {s['section']} · Row {s['row']} · Seat {s['number']}" for s in refund["seats"])
    amount = refund["amount"] if refund["amount"] is not None else refund["total_price"]
    how = {"BALANCE": "to your Boxoffice balance", "CARD": "to your card"}.get(str(refund["method"]), "")
    msg.set_content(
        f"Hello {name},\n\n"
        f"your order #{refund['reservation_id']} for {refund['concert']} "
        f"({local_time(starts, tz.key, MAIL_LOCALE)}, {refund['venue']}) is cancelled.\n\n"
        f"Refunded: {format_money(int(amount), refund['currency'], MAIL_LOCALE)} {how}.\n"
        f"Seats released:\n{seats}\n\n"
        "The tickets of this order are void and will not be admitted.\n"
    )
    return msg


def password_reset(settings: Settings, *, to: str, name: str, link: str, ttl_minutes: int) -> EmailMessage:
    msg = _base(settings, to=to, subject="Reset your Boxoffice password")
    msg.set_content(
        f"Hello {name},\n\n"
        f"to choose a new password, open this link within {ttl_minutes} minutes (it works once):\n\n"
        f"{link}\n\n"
        "If you did not ask for this, ignore this message: your password stays as it is.\n"
    )
    return msg


def waitlist_offer(
    settings: Settings, *, to: str, name: str, concert: str, link: str, until: str
) -> EmailMessage:
    """A returned seat held for the next fan on the waitlist: pay by `until`, or it moves on."""
    msg = _base(settings, to=to, subject=f"A seat came back for you: {concert}")
    msg.set_content(
        f"Hello {name},\n\n"
        f"you are next on the waitlist for {concert}, and a seat came back. It is held for you until "
        f"{until}. Pay for it here:\n\n{link}\n\n"
        "If you do not, it goes to the next fan on the waitlist.\n"
    )
    return msg
