"""A fan's language: users.locale, the language they chose with the pages' switch ("ko" or "en").

NULL until they choose (or sign up: the page's language then); pages negotiate from it (through
the bo_lang cookie set at login), mails go out in it (else BOXOFFICE_DEFAULT_LOCALE).

Revision ID: 0010_user_locale
Revises: 0009_i18n_money
"""

from alembic import op

revision = "0010_user_locale"
down_revision = "0009_i18n_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN locale text CHECK (locale IN ('ko', 'en'))")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN IF EXISTS locale")
