"""A show may require a verified email to hold seats (issue 26: scripted throwaway accounts
keeping seats off sale).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE shows ADD COLUMN hold_requires_verified_email boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE shows DROP COLUMN hold_requires_verified_email")
