"""A show's queue chooses adaptive admission or its static rate: `queue_adaptive`.

On (the default, and for every show that exists when this runs: adaptive admission already steered
them all), the admission worker steers the show's rate from the buyers' p99 toward
BOXOFFICE_BUYER_P99_TARGET_MS, never above `queue_admit_per_second`. Off, the show admits at its
configured rate whatever the buyers' latency (a promoter who wants a static rate).

Revision ID: 0011_queue_adaptive
Revises: 0010_user_locale
"""

from alembic import op

revision = "0011_queue_adaptive"
down_revision = "0010_user_locale"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE shows ADD COLUMN queue_adaptive boolean NOT NULL DEFAULT true
"""

DOWNGRADE = """
ALTER TABLE shows DROP COLUMN IF EXISTS queue_adaptive
"""


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
