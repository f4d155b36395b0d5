"""SQLAlchemy Core table definitions, mirroring the migrations (the migrations are the truth).

Repositories build statements from these; hot paths use Core, never lazy ORM loading.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()


def _ts(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _id() -> Column[int]:
    return Column("id", BigInteger, primary_key=True, autoincrement=True)


users = Table(
    "users",
    metadata,
    _id(),
    Column("email", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("balance_currency", Text, nullable=False, server_default="KRW"),
    Column("phone", Text),
    Column("address", Text),
    Column("email_verified", Boolean, nullable=False),
    Column("locale", Text),  # "ko" / "en" once chosen (kit/i18n.py), else NULL
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("deleted_at"),
)

balance_ledger = Table(
    "balance_ledger",
    metadata,
    _id(),
    Column("user_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("reference", Text),
    Column("balance_after", BigInteger, nullable=False),
    _ts("created_at", False),
)

venues = Table(
    "venues",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("time_zone", Text, nullable=False),
    _ts("created_at", False),
)

venue_sections = Table(
    "venue_sections",
    metadata,
    _id(),
    Column("venue_id", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("seats_per_row", Integer, nullable=False),
    Column("row_lengths", ARRAY(Integer)),
)

concerts = Table(
    "concerts",
    metadata,
    _id(),
    Column("venue_id", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("artist", Text, nullable=False),
    Column("description", Text),
    Column("poster_url", Text),
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("retired_at"),
    Column("max_tickets_per_fan", Integer),
)

shows = Table(
    "shows",
    metadata,
    _id(),
    Column("concert_id", BigInteger, nullable=False),
    _ts("starts_at", False),
    _ts("sale_opens_at", False),
    _ts("sale_closes_at"),
    _ts("pre_queue_opens_at"),
    Column("hold_seconds", Integer, nullable=False),
    Column("max_seats_per_reservation", Integer, nullable=False),
    Column("queue_admit_per_second", Float, nullable=False),
    Column("queue_max_active", Integer),
    Column("queue_token_ttl_seconds", Integer, nullable=False),
    Column("queue_oversubscription", Float),
    Column("queue_paused", Boolean, nullable=False),
    Column("refund_cutoff_hours", Integer),
    Column("hold_requires_verified_email", Boolean, nullable=False),
    Column("reentry", Boolean, nullable=False),
    Column("queue_pow_difficulty", Integer, nullable=False),
    Column("max_tickets_per_fan", Integer),
    Column("currency", Text, nullable=False, server_default="KRW"),
    Column("queue_adaptive", Boolean, nullable=False, server_default=true()),
    _ts("created_at", False),
    _ts("updated_at", False),
)

show_prices = Table(
    "show_prices",
    metadata,
    Column("show_id", BigInteger, primary_key=True),
    Column("section_id", BigInteger, primary_key=True),
    Column("price", BigInteger, nullable=False),
)

seats = Table(
    "seats",
    metadata,
    _id(),
    Column("show_id", BigInteger, nullable=False),
    Column("section_id", BigInteger, nullable=False),
    Column("section", Text, nullable=False),
    Column("row", Integer, nullable=False),
    Column("number", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("reservation_id", BigInteger),
    _ts("hold_expires_at"),
    _ts("updated_at", False),
)

inventory = Table(
    "inventory",
    metadata,
    Column("show_id", BigInteger, primary_key=True),
    Column("total", Integer, nullable=False),
    Column("remaining", Integer, nullable=False),
    Column("version", BigInteger, nullable=False),
    _ts("updated_at", False),
)

reservations = Table(
    "reservations",
    metadata,
    _id(),
    Column("user_id", BigInteger, nullable=False),
    Column("show_id", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("total_price", BigInteger, nullable=False),
    Column("seat_count", Integer, nullable=False),
    _ts("expires_at", False),
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("confirmed_at"),
    _ts("closed_at"),
)

reservation_seats = Table(
    "reservation_seats",
    metadata,
    Column("reservation_id", BigInteger, primary_key=True),
    Column("seat_id", BigInteger, primary_key=True),
    Column("show_id", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("live", Boolean, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    _id(),
    Column("reservation_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("method", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("idempotency_key", Text),
    Column("provider_idempotency_key", Text),
    Column("provider_reference", Text),
    Column("failure_code", Text),
    Column("card_fingerprint", Text),
    Column("attempts", Integer, nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("settled_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("response_status", Integer),
    Column("response_body", JSONB),
    _ts("created_at", False),
    _ts("expires_at", False),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("aggregate_type", Text, nullable=False),
    Column("aggregate_id", BigInteger, nullable=False),
    Column("show_id", BigInteger),
    Column("payload", JSONB, nullable=False),
    _ts("created_at", False),
    _ts("published_at"),
)

admin_actions = Table(
    "admin_actions",
    metadata,
    _id(),
    Column("admin_id", BigInteger, nullable=False),
    Column("action", Text, nullable=False),
    Column("target_type", Text, nullable=False),
    Column("target_id", BigInteger, nullable=False),
    Column("user_id", BigInteger),
    Column("reason", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    Column("outcome", Text, nullable=False),
    _ts("created_at", False),
)

tickets = Table(
    "tickets",
    metadata,
    _id(),
    Column("code", Text, nullable=False),
    Column("reservation_id", BigInteger, nullable=False),
    Column("seat_id", BigInteger, nullable=False),
    Column("show_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("holder_name", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", Text, nullable=False),
    _ts("issued_at", False),
    _ts("used_at"),
    Column("used_gate", Text),
    _ts("voided_at"),
)

checkins = Table(
    "checkins",
    metadata,
    _id(),
    Column("show_id", BigInteger, nullable=False),
    Column("ticket_id", BigInteger),
    Column("gate", Text, nullable=False),
    Column("result", Text, nullable=False),
    Column("offline", Boolean, nullable=False),
    _ts("scanned_at", False),
    _ts("recorded_at", False),
    Column("by_user", BigInteger),
)

mail_outbox = Table(
    "mail_outbox",
    metadata,
    _id(),
    Column("kind", Text, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("reservation_id", BigInteger),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    _ts("next_attempt_at", False),
    Column("last_error", Text),
    Column("subject", Text),
    _ts("created_at", False),
    _ts("sent_at"),
)

# Seats of a fan's live reservations per concert and per show (the per-fan limits; booking's hold).
fan_tickets = Table(
    "fan_tickets",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("scope_id", BigInteger, primary_key=True),
    Column("seats", Integer, nullable=False),
)

# The browsers (hashed device cookie) each account logged in from: a console signal (admin domain).
fan_devices = Table(
    "fan_devices",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("device_hash", Text, primary_key=True),
    _ts("first_seen", False),
    _ts("last_seen", False),
)

# A show's waitlist (waiting_room: join / status; booking: offers of returned seats).
waitlist = Table(
    "waitlist",
    metadata,
    _id(),
    Column("show_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    _ts("joined_at", False),
    _ts("offered_at"),
    Column("reservation_id", BigInteger),
    _ts("closed_at"),
)
