"""Outgoing email over SMTP (verification links). Off unless BOXOFFICE_SMTP_HOST is set.

Sent after the transaction that created the account has committed (a background task of the
response), so a mail never announces an account that does not exist. smtplib runs in a thread.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

import structlog

from boxoffice.config import Settings, secret
from boxoffice.kit.i18n import _

log = structlog.get_logger("boxoffice.mail.smtp")

SMTP_TIMEOUT_SECONDS = 10.0


def smtp_enabled(settings: Settings) -> bool:
    return settings.smtp_host is not None


def verification_message(settings: Settings, *, to: str, name: str, link: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = _("Confirm your Boxoffice email address")
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg.set_content(
        _("Hello %(name)s,") % {"name": name}
        + "\n\n"
        + _("please confirm your email address by opening this link (valid for 24 hours):")
        + f"\n\n{link}\n\n"
        + _("If you did not sign up for Boxoffice, ignore this message.")
        + "\n"
    )
    return msg


def _send_blocking(settings: Settings, msg: EmailMessage) -> None:
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, secret(settings.smtp_password))
        smtp.send_message(msg)


async def send_email(settings: Settings, msg: EmailMessage) -> bool:
    """Send one message; failures are logged (never the body: it carries a token) and reported."""
    if not smtp_enabled(settings):
        return False
    try:
        await asyncio.to_thread(_send_blocking, settings, msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("email_send_failed", subject=str(msg["Subject"]), error=type(exc).__name__)
        return False
    log.info("email_sent", subject=str(msg["Subject"]))
    return True


async def send_verification(settings: Settings, *, to: str, name: str, link: str) -> None:
    """The signup's verification mail (a background task of the response: after the commit)."""
    if smtp_enabled(settings):
        await send_email(settings, verification_message(settings, to=to, name=name, link=link))
