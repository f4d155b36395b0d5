"""Signals of one person behind many accounts, for the console's fan view (flagged, not blocked):
the browsers (a random device cookie, kept hashed) each account logged in from, and the payment
card's fingerprint the provider answers for a card payment.

Revision ID: 0007_account_signals
Revises: 0006_fan_limits
"""

from alembic import op

revision = "0007_account_signals"
down_revision = "0006_fan_limits"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE fan_devices (
    user_id      bigint NOT NULL REFERENCES users (id),
    -- SHA-256 of the browser's bo_dev cookie (a random id): never the cookie itself
    device_hash  text NOT NULL CHECK (length(device_hash) = 64),
    first_seen   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    PRIMARY KEY (user_id, device_hash)
);
CREATE INDEX fan_devices_device_idx ON fan_devices (device_hash);

-- The provider's fingerprint of the card (the same card gives the same one; no card number here).
ALTER TABLE payments ADD COLUMN card_fingerprint text CHECK (length(card_fingerprint) <= 64);
CREATE INDEX payments_card_fingerprint_idx ON payments (card_fingerprint) WHERE card_fingerprint IS NOT NULL;
"""

DOWNGRADE = """
DROP INDEX IF EXISTS payments_card_fingerprint_idx;
ALTER TABLE payments DROP COLUMN IF EXISTS card_fingerprint;
DROP TABLE IF EXISTS fan_devices;
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
