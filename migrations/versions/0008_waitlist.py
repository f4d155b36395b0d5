"""A second chance in order: a show's waitlist. While anyone waits on it, returned seats are not
open to the crowd (the hold statement refuses them); the hold-expiry job offers each one to the
next waitlisted fan as a hold of their own for the show's hold time, and tells them by mail
(a WAITLIST_OFFER row in the mail outbox, written with the offer).

Revision ID: 0008_waitlist
Revises: 0007_account_signals
"""

from alembic import op

revision = "0008_waitlist"
down_revision = "0007_account_signals"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE waitlist (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id         bigint NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES users (id),
    -- SKIPPED: passed over, the fan being at a per-fan ticket limit when a seat came back
    status          text NOT NULL CHECK (status IN ('WAITING', 'OFFERED', 'TAKEN', 'LAPSED', 'LEFT', 'SKIPPED')),
    joined_at       timestamptz NOT NULL,
    offered_at      timestamptz,
    reservation_id  bigint REFERENCES reservations (id),
    closed_at       timestamptz
);
CREATE UNIQUE INDEX waitlist_one_live_idx ON waitlist (show_id, user_id) WHERE status IN ('WAITING', 'OFFERED');
CREATE INDEX waitlist_waiting_idx ON waitlist (show_id, id) WHERE status = 'WAITING';
CREATE INDEX waitlist_offered_idx ON waitlist (reservation_id) WHERE status = 'OFFERED';
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_kind_check;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_kind_check
    CHECK (kind IN ('ORDER_CONFIRMED', 'REFUNDED', 'PASSWORD_RESET', 'WAITLIST_OFFER'));
"""

DOWNGRADE = """
DELETE FROM mail_outbox WHERE kind = 'WAITLIST_OFFER';
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_kind_check;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_kind_check
    CHECK (kind IN ('ORDER_CONFIRMED', 'REFUNDED', 'PASSWORD_RESET'));
DROP TABLE IF EXISTS waitlist;
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
