"""The promoter's console: an audit of admin actions, retired concerts, a show's refund policy and
rows of different lengths in a venue section.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE admin_actions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin_id        bigint NOT NULL REFERENCES users (id),
    action          text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    target_type     text NOT NULL,
    target_id       bigint NOT NULL,
    user_id         bigint REFERENCES users (id),
    reason          text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- REQUESTED is written before the action, DONE/FAILED after: a crash leaves REQUESTED, so no
    -- change ever goes unaudited.
    outcome         text NOT NULL DEFAULT 'REQUESTED' CHECK (outcome IN ('REQUESTED', 'DONE', 'FAILED')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_actions_target_idx ON admin_actions (target_type, target_id);
CREATE INDEX admin_actions_user_idx ON admin_actions (user_id, id DESC);

ALTER TABLE concerts ADD COLUMN retired_at timestamptz;

-- Fans may cancel a paid reservation for a full refund until this many hours before the show;
-- NULL: no refunds by fans (an administrator can still refund, audited).
ALTER TABLE shows ADD COLUMN refund_cutoff_hours integer DEFAULT 24
    CHECK (refund_cutoff_hours IS NULL OR refund_cutoff_hours BETWEEN 0 AND 8760);

-- Seats per row, row by row, when the rows of a section differ; NULL: every row has seats_per_row.
ALTER TABLE venue_sections ADD COLUMN row_lengths integer[];

"""

DOWNGRADE = """
ALTER TABLE venue_sections DROP COLUMN IF EXISTS row_lengths;
ALTER TABLE shows DROP COLUMN IF EXISTS refund_cutoff_hours;
ALTER TABLE concerts DROP COLUMN IF EXISTS retired_at;
DROP TABLE IF EXISTS admin_actions;
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
