"""One fan, a fair share: a per-fan ticket limit per concert and per show, enforced by the hold.

`fan_tickets` counts, per fan, the seats of their live reservations (TEMP_RESERVED and RESERVED)
per concert and per show: the hold statement adds to both rows only while they stay within the
limits (INSERT ... ON CONFLICT DO UPDATE ... WHERE: concurrent holds of one fan queue on the row
and each re-checks the latest count), and closing a reservation gives its seats back. A hold
that would pass a limit raises SQLSTATE BO001 through `bo_ticket_limit_reached`, so nothing of it
is written.

Revision ID: 0006_fan_limits
Revises: 0005_queue_toll
"""

from alembic import op

revision = "0006_fan_limits"
down_revision = "0005_queue_toll"
branch_labels = None
depends_on = None

UPGRADE = """
-- NULL: no limit (the default). Seats per hold stay bounded by max_seats_per_reservation.
ALTER TABLE concerts ADD COLUMN max_tickets_per_fan integer
    CHECK (max_tickets_per_fan IS NULL OR max_tickets_per_fan BETWEEN 1 AND 1000);
ALTER TABLE shows ADD COLUMN max_tickets_per_fan integer
    CHECK (max_tickets_per_fan IS NULL OR max_tickets_per_fan BETWEEN 1 AND 1000);

CREATE TABLE fan_tickets (
    user_id   bigint NOT NULL REFERENCES users (id),
    scope     text NOT NULL CHECK (scope IN ('concert', 'show')),
    scope_id  bigint NOT NULL,
    seats     integer NOT NULL CHECK (seats >= 0),
    PRIMARY KEY (user_id, scope, scope_id)
);

INSERT INTO fan_tickets (user_id, scope, scope_id, seats)
SELECT r.user_id, 'concert', s.concert_id, sum(r.seat_count)
FROM reservations r JOIN shows s ON s.id = r.show_id
WHERE r.status IN ('TEMP_RESERVED', 'RESERVED')
GROUP BY r.user_id, s.concert_id
UNION ALL
SELECT r.user_id, 'show', r.show_id, sum(r.seat_count)
FROM reservations r
WHERE r.status IN ('TEMP_RESERVED', 'RESERVED')
GROUP BY r.user_id, r.show_id;

CREATE FUNCTION bo_ticket_limit_reached(detail text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'BO001', MESSAGE = 'TICKET_LIMIT_REACHED', DETAIL = detail; END $$;
"""

DOWNGRADE = """
DROP FUNCTION IF EXISTS bo_ticket_limit_reached(text);
DROP TABLE IF EXISTS fan_tickets;
ALTER TABLE shows DROP COLUMN IF EXISTS max_tickets_per_fan;
ALTER TABLE concerts DROP COLUMN IF EXISTS max_tickets_per_fan;
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
