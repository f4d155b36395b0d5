"""The toll at the queue's door: a show's proof-of-work difficulty (ALTCHA's maxnumber).

Revision ID: 0005_queue_toll
Revises: 0004
"""

from alembic import op

revision = "0005_queue_toll"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
-- The largest number a joining client may have to try (ALTCHA's maxnumber; half of it on average).
-- On by default: 100,000 is about a second of a phone's Web Worker, and rises with the crowd
-- (up to 10x); 0 switches the toll off.
ALTER TABLE shows ADD COLUMN queue_pow_difficulty integer NOT NULL DEFAULT 100000
    CHECK (queue_pow_difficulty BETWEEN 0 AND 10000000);
"""

DOWNGRADE = """
ALTER TABLE shows DROP COLUMN IF EXISTS queue_pow_difficulty;
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
