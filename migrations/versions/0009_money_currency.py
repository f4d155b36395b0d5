"""Money has a currency: each show an ISO 4217 code, each fan's balance one too.

Amounts stay integers in the currency's ISO 4217 minor unit (kit/money.py). Rows that exist when
this runs keep every integer unchanged and are labelled USD, a currency with two decimals: the
pages showed them as `amount/100` with two decimals, so each amount keeps exactly the value it
showed (no rounding, no loss). Rows created afterwards default to KRW (the product's home market);
the API and the console name the currency of a new show.

Revision ID: 0009_i18n_money
Revises: 0008_waitlist
"""

from alembic import op

revision = "0009_i18n_money"
down_revision = "0008_waitlist"
branch_labels = None
depends_on = None

LEGACY_CURRENCY = "USD"

UPGRADE = f"""
ALTER TABLE shows ADD COLUMN currency text NOT NULL DEFAULT '{LEGACY_CURRENCY}'
    CHECK (currency ~ '^[A-Z]{{3}}$');
ALTER TABLE shows ALTER COLUMN currency SET DEFAULT 'KRW';
ALTER TABLE users ADD COLUMN balance_currency text NOT NULL DEFAULT '{LEGACY_CURRENCY}'
    CHECK (balance_currency ~ '^[A-Z]{{3}}$');
ALTER TABLE users ALTER COLUMN balance_currency SET DEFAULT 'KRW'
"""

DOWNGRADE = """
ALTER TABLE users DROP COLUMN IF EXISTS balance_currency;
ALTER TABLE shows DROP COLUMN IF EXISTS currency
"""


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";\n") if s.strip()]


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)
