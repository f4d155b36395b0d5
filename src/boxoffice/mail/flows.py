"""The mail_sender job: sends the mails the business transactions queued (mail_outbox), after they
committed, with retries (backing off) and a dead-letter count on /metrics. A slow or dead SMTP
server slows this job only, never a payment. With SMTP off (no BOXOFFICE_SMTP_HOST) a mail is
marked SKIPPED once it is due, so nothing piles up.

Also the password-reset request: the same answer whether the address has an account or not (the
mail is queued only when it has one, and sent by the job, so the answer does not wait for SMTP).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from boxoffice.auth import reset
from boxoffice.config import secret
from boxoffice.db.uow import lean_unit_of_work
from boxoffice.kit.i18n import use_locale
from boxoffice.mail import compose, repository
from boxoffice.mail.smtp import send_email, smtp_enabled
from boxoffice.runtime import Runtime
from boxoffice.tickets import service as tickets

log = structlog.get_logger("boxoffice.mail")

BATCH = 20
LEASE = timedelta(seconds=120)  # a sender that died mid-batch: its mails are due again after this


async def send_due(runtime: Runtime) -> int:
    """One tick: lease the due mails, send each. Returns how many were sent."""
    now = runtime.clock.now()
    async with lean_unit_of_work(runtime.engine) as uow:
        leased = await repository.lease(uow.conn, now=now, lease_until=now + LEASE, limit=BATCH)
    sent = 0
    for mail in leased:
        sent += await _send_one(runtime, mail)
    return sent


async def _send_one(runtime: Runtime, mail: dict[str, Any]) -> int:
    settings = runtime.settings
    kind = mail["kind"]
    if not smtp_enabled(settings):
        # Nothing to send it with: not composed either (an order's QR codes, PDF and calendar are
        # most of the worker's CPU during a sale, measured with py-spy in a bench flash sale).
        async with lean_unit_of_work(runtime.engine) as uow:
            await repository.finish(uow.conn, mail["id"], "SKIPPED", now=runtime.clock.now(), subject=None)
        return 0
    async with lean_unit_of_work(runtime.engine) as uow:
        msg = await _compose_for(runtime, uow.conn, mail, runtime.clock.now())
    subject = str(msg["Subject"]) if msg is not None else None
    if msg is None:
        async with lean_unit_of_work(runtime.engine) as uow:
            await repository.finish(uow.conn, mail["id"], "SKIPPED", now=runtime.clock.now(), subject=subject)
        return 0
    ok = await send_email(settings, msg)
    now = runtime.clock.now()
    async with lean_unit_of_work(runtime.engine) as uow:
        if ok:
            await repository.finish(uow.conn, mail["id"], "SENT", now=now, subject=subject)
        elif mail["attempts"] >= settings.mail_max_attempts:
            await repository.finish(uow.conn, mail["id"], "DEAD", now=now, subject=subject, error="smtp")
        else:
            backoff = settings.mail_retry_base_seconds * 2 ** (mail["attempts"] - 1)
            await repository.retry_at(
                uow.conn, mail["id"], now + timedelta(seconds=backoff), error="smtp", subject=subject
            )
    if ok:
        runtime.metrics.mail_sent.labels(kind).inc()
        return 1
    if mail["attempts"] >= settings.mail_max_attempts:
        runtime.metrics.mail_dead_letters.labels(kind).inc()
        log.warning("mail_dead", mail_id=mail["id"], kind=kind, attempts=mail["attempts"])
    else:
        runtime.metrics.mail_retries.labels(kind).inc()
    return 0


async def _compose_for(
    runtime: Runtime, conn: asyncpg.Connection, mail: dict[str, Any], now: datetime
) -> EmailMessage | None:
    """The mail in its recipient's language: the account's choice, else the deployment's default."""
    language = await repository.recipient_locale(conn, mail["user_id"])
    with use_locale(language or runtime.settings.default_locale):
        return await _compose(runtime, conn, mail, now)


async def _compose(
    runtime: Runtime, conn: asyncpg.Connection, mail: dict[str, Any], now: datetime
) -> EmailMessage | None:
    """The message for a queued mail, from the database as it is now; None: nothing to send (the
    account is gone, the order has no tickets)."""
    settings = runtime.settings
    to = await repository.recipient(conn, mail["user_id"])
    if to is None:
        return None
    if mail["kind"] == "ORDER_CONFIRMED":
        views = await tickets.order_for(conn, mail["reservation_id"], user_id=None, is_admin=True)
        if not views:
            return None
        return compose.order_confirmed(
            settings,
            to=to["email"],
            name=to["name"],
            reservation_id=mail["reservation_id"],
            tickets=views,
            now=now,
            paid=await repository.order_paid(conn, mail["reservation_id"]),
        )
    if mail["kind"] == "REFUNDED":
        refund = await repository.refund(conn, mail["reservation_id"])
        if refund is None:
            return None
        return compose.refunded(settings, to=to["email"], name=to["name"], refund=refund)
    if mail["kind"] == "PASSWORD_RESET":
        ttl = settings.password_reset_ttl_seconds
        token = reset.mint(
            secret(settings.jwt_secret),
            user_id=to["id"],
            password_hash=to["password_hash"],
            expires_at=int(now.timestamp()) + ttl,
        )
        link = f"{settings.public_base_url.rstrip('/')}/reset-password?token={token}"
        return compose.password_reset(
            settings, to=to["email"], name=to["name"], link=link, ttl_minutes=ttl // 60
        )
    if mail["kind"] == "WAITLIST_OFFER":
        offer = await repository.offer(conn, mail["reservation_id"])
        if offer is None:  # taken, released or lapsed before the mail went out
            return None
        zone = ZoneInfo(offer["time_zone"] or "UTC")
        until = offer["expires_at"].astimezone(zone)
        return compose.waitlist_offer(
            settings,
            to=to["email"],
            name=to["name"],
            concert=offer["concert"],
            link=f"{settings.public_base_url.rstrip('/')}/reservations/{mail['reservation_id']}/checkout",
            until=f"{until:%Y-%m-%d %H:%M} {until.tzname()}",
        )
    return None


async def request_password_reset(runtime: Runtime, email: str) -> None:
    """Queue a reset mail if the address has an account; nothing otherwise. Same answer either way."""
    async with lean_unit_of_work(runtime.engine) as uow:
        user_id = await repository.user_id_by_email(uow.conn, email)
        if user_id is not None:
            await repository.enqueue(
                uow.conn, kind="PASSWORD_RESET", user_id=user_id, reservation_id=None, now=runtime.clock.now()
            )


async def outbox_view(runtime: Runtime, limit: int = 50) -> dict[str, Any]:
    """The dev mailbox / console: the latest mails and the count per status."""
    async with lean_unit_of_work(runtime.engine) as uow:
        return {
            "items": await repository.recent(uow.conn, limit),
            "counts": await repository.counts(uow.conn),
        }
