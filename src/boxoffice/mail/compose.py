"""The product's mails as MIME messages (pure: values in, EmailMessage out):

- ORDER_CONFIRMED: the tickets (text and HTML, each ticket's QR code inline as a PNG part), the
  order's PDF attached, and an .ics calendar entry (icalendar) for the show in the venue's time zone;
- REFUNDED: what was refunded (amount, how, which seats);
- PASSWORD_RESET: the signed, single-use, short-lived link.

Each is written in the recipient's language: the caller (mail/flows.py) composes inside
`kit.i18n.use_locale(the account's locale)`, and `_()` / `money` / `local_time` follow it.
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
from boxoffice.kit.i18n import _, current_locale
from boxoffice.kit.money import format_money
from boxoffice.kit.timefmt import local_time
from boxoffice.tickets.pdf import tickets_pdf
from boxoffice.tickets.qr import qr_png
from boxoffice.tickets.rules import seat_label

# A show's length is not in the catalog: the calendar entry blocks three hours.
SHOW_LENGTH = timedelta(hours=3)


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
    event.add(
        "description",
        _("Boxoffice order #%(number)s: %(seats)s") % {"number": reservation_id, "seats": seats},
    )
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
    total = format_money(paid[0], paid[1], current_locale()) if paid is not None else ""
    paid_line = _("Paid: %(amount)s") % {"amount": total}
    subject = _("Your tickets: %(concert)s, %(starts)s") % {
        "concert": first["concert"],
        "starts": first["starts_text"],
    }
    msg = _base(settings, to=to, subject=subject)
    base = settings.public_base_url.rstrip("/")
    lines = [
        _("Hello %(name)s,") % {"name": name},
        "",
        _("your order #%(number)s is confirmed. Your tickets for %(concert)s:")
        % {"number": reservation_id, "concert": first["concert"]},
        _("%(starts)s at %(venue)s") % {"starts": first["starts_text"], "venue": first["venue"]},
        "",
    ]
    for t in tickets:
        code = _("code %(code)s") % {"code": t["code"]}
        lines += [f"- {t['seat']} · {code} · {base}/tickets/{t['ticket_id']}"]
    lines += [
        *([paid_line] if total else []),
        "",
        _("Show the QR code (or type the code) at the door. The PDF and a calendar entry are attached."),
    ]
    msg.set_content("\n".join(lines) + "\n")
    cids = [make_msgid(domain="boxoffice.local") for _ticket in tickets]
    holder, code, qr = _("Holder: %(holder)s"), _("Code: %(code)s"), _("QR code for %(seat)s")
    cards = "".join(
        f"<li><p><strong>{escape(t['seat'])}</strong><br>{escape(holder % {'holder': t['holder']})}<br>"
        + escape(code % {"code": t["code"]})
        + "</p>"
        f'<img src="cid:{cid[1:-1]}" alt="{escape(qr % {"seat": t["seat"]})}" width="200" height="200"></li>'
        for t, cid in zip(tickets, cids, strict=True)
    )
    html = (
        f"<p>{escape(_('Hello %(name)s,') % {'name': name})}</p>"
        f"<p>{escape(_('your order #%(number)s is confirmed.') % {'number': reservation_id})}</p>"
        f"<h1>{escape(first['concert'])}</h1><p>{escape(first['starts_text'])} · {escape(first['venue'])}</p>"
        f"<ul>{cards}</ul>{f'<p>{escape(paid_line)}</p>' if total else ''}"
        f"<p>{escape(_('Show the QR code (or type the code) at the door.'))}</p>"
    )
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None
    for t, cid in zip(tickets, cids, strict=True):
        html_part.add_related(qr_png(t["payload"], scale=5), "image", "png", cid=cid)
    msg.add_attachment(
        tickets_pdf(tickets, title=_("Boxoffice order %(number)s") % {"number": reservation_id}),
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
    locale = current_locale()
    subject = _("Refunded: order #%(number)s (%(concert)s)") % {
        "number": refund["reservation_id"],
        "concert": refund["concert"],
    }
    msg = _base(settings, to=to, subject=subject)
    seats = "\n".join(f"- {seat_label(s['section'], s['row'], s['number'])}" for s in refund["seats"])
    amount = refund["amount"] if refund["amount"] is not None else refund["total_price"]
    how = {"BALANCE": _("to your Boxoffice balance"), "CARD": _("to your card")}.get(
        str(refund["method"]), ""
    )
    values = {
        "name": name,
        "number": refund["reservation_id"],
        "concert": refund["concert"],
        "starts": local_time(starts, tz.key, locale),
        "venue": refund["venue"],
        "amount": format_money(int(amount), refund["currency"], locale),
        "how": how,
    }
    msg.set_content(
        _("Hello %(name)s,") % values
        + "\n\n"
        + _("your order #%(number)s for %(concert)s (%(starts)s, %(venue)s) is cancelled.") % values
        + "\n\n"
        + _("Refunded: %(amount)s %(how)s.") % values
        + "\n"
        + _("Seats released:")
        + f"\n{seats}\n\n"
        + _("The tickets of this order are void and will not be admitted.")
        + "\n"
    )
    return msg


def password_reset(settings: Settings, *, to: str, name: str, link: str, ttl_minutes: int) -> EmailMessage:
    msg = _base(settings, to=to, subject=_("Reset your Boxoffice password"))
    msg.set_content(
        _("Hello %(name)s,") % {"name": name}
        + "\n\n"
        + _("to choose a new password, open this link within %(minutes)s minutes (it works once):")
        % {"minutes": ttl_minutes}
        + f"\n\n{link}\n\n"
        + _("If you did not ask for this, ignore this message: your password stays as it is.")
        + "\n"
    )
    return msg


def waitlist_offer(
    settings: Settings, *, to: str, name: str, concert: str, link: str, until: str
) -> EmailMessage:
    """A returned seat held for the next fan on the waitlist: pay by `until`, or it moves on."""
    msg = _base(settings, to=to, subject=_("A seat came back for you: %(concert)s") % {"concert": concert})
    msg.set_content(
        _("Hello %(name)s,") % {"name": name}
        + "\n\n"
        + _(
            "you are next on the waitlist for %(concert)s, and a seat came back. "
            "It is held for you until %(until)s. Pay for it here:"
        )
        % {"concert": concert, "until": until}
        + f"\n\n{link}\n\n"
        + _("If you do not, it goes to the next fan on the waitlist.")
        + "\n"
    )
    return msg
