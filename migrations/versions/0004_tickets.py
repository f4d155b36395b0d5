"""Tickets and the door: one signed ticket per sold seat, the scans at the gates, the gate staff
role (DOOR), the venue's time zone, a show's re-entry setting, and the mails to send.

The database refuses a second live ticket for a seat (tickets_one_live_per_seat), a ticket whose
status and timestamps disagree, and a second online admission: a ticket leaves VALID only by a
conditional UPDATE (see tickets/repository.py).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('USER', 'ADMIN', 'DOOR'));

-- IANA name; people see a show's times (and its calendar entry) in it.
ALTER TABLE venues ADD COLUMN time_zone text NOT NULL DEFAULT 'Asia/Seoul'
    CHECK (length(time_zone) BETWEEN 1 AND 64);

-- Re-entry: a USED ticket may be checked out (back to VALID) and admitted again.
ALTER TABLE shows ADD COLUMN reentry boolean NOT NULL DEFAULT false;

CREATE TABLE tickets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 16 Crockford base32 characters (80 random bits), stored without the display dashes.
    code            text NOT NULL UNIQUE CHECK (code ~ '^[0-9A-HJKMNP-TV-Z]{16}$'),
    reservation_id  bigint NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    seat_id         bigint NOT NULL REFERENCES seats (id) ON DELETE CASCADE,
    show_id         bigint NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (id),
    holder_name     text NOT NULL,
    key_id          text NOT NULL,
    payload         text NOT NULL,
    status          text NOT NULL DEFAULT 'VALID' CHECK (status IN ('VALID', 'USED', 'VOID')),
    issued_at       timestamptz NOT NULL,
    used_at         timestamptz,
    used_gate       text,
    voided_at       timestamptz,
    CHECK ((status = 'USED') = (used_at IS NOT NULL)),
    CHECK ((status = 'VOID') = (voided_at IS NOT NULL))
);
-- One live (not VOID) ticket per seat: a seat sold again after a refund gets a new one.
CREATE UNIQUE INDEX tickets_one_live_per_seat ON tickets (seat_id) WHERE status <> 'VOID';
CREATE INDEX tickets_user_idx ON tickets (user_id, id DESC);
CREATE INDEX tickets_show_idx ON tickets (show_id, id);
CREATE INDEX tickets_reservation_idx ON tickets (reservation_id);

-- Every scan at a gate (online, or an offline gate's synced scans) and what it answered.
CREATE TABLE checkins (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id         bigint NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    ticket_id       bigint REFERENCES tickets (id) ON DELETE CASCADE,
    gate            text NOT NULL CHECK (length(gate) BETWEEN 1 AND 40),
    result          text NOT NULL CHECK (result IN
                        ('VALID', 'ALREADY_USED', 'VOID', 'WRONG_SHOW', 'NOT_A_TICKET', 'CONFLICT', 'CHECKED_OUT')),
    offline         boolean NOT NULL DEFAULT false,
    scanned_at      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    by_user         bigint REFERENCES users (id)
);
CREATE INDEX checkins_show_idx ON checkins (show_id, scanned_at);
CREATE INDEX checkins_ticket_idx ON checkins (ticket_id) WHERE ticket_id IS NOT NULL;

-- Mails to send, written in the transaction of what they announce (the tickets issued, the refund,
-- the reset asked for) and sent after commit by the mail_sender job, with retries; DEAD after the
-- last attempt (counted on /metrics). Nothing secret is stored: a reset link is minted at sending.
CREATE TABLE mail_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('ORDER_CONFIRMED', 'REFUNDED', 'PASSWORD_RESET')),
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reservation_id  bigint REFERENCES reservations (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SENT', 'DEAD', 'SKIPPED')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    subject         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE status = 'PENDING';
"""

DOWNGRADE = """
DROP TABLE IF EXISTS mail_outbox;
DROP TABLE IF EXISTS checkins;
DROP TABLE IF EXISTS tickets;
ALTER TABLE shows DROP COLUMN IF EXISTS reentry;
ALTER TABLE venues DROP COLUMN IF EXISTS time_zone;
UPDATE users SET role = 'USER' WHERE role = 'DOOR';
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('USER', 'ADMIN'));
"""


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip()]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
