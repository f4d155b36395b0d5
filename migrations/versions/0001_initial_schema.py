"""Initial schema: the whole domain of SPEC section 2.

The database encodes every invariant it can: foreign keys, CHECKs (balance >= 0, 0 <= remaining
<= total, prices >= 0) and partial unique indexes (a seat in at most one live reservation, one
live hold per user and show, a reservation paid at most once).

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text NOT NULL CHECK (email = lower(btrim(email)) AND length(email) BETWEEN 3 AND 320),
    password_hash   text NOT NULL,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role            text NOT NULL DEFAULT 'USER' CHECK (role IN ('USER', 'ADMIN')),
    balance         bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
    phone           text,
    address         text,
    email_verified  boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX users_email_live_uq ON users (email) WHERE deleted_at IS NULL;

CREATE TABLE balance_ledger (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id),
    amount          bigint NOT NULL CHECK (amount <> 0),
    kind            text NOT NULL CHECK (kind IN ('TOPUP', 'PAYMENT', 'REFUND', 'ADJUSTMENT')),
    reference       text,
    balance_after   bigint NOT NULL CHECK (balance_after >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX balance_ledger_user_idx ON balance_ledger (user_id, id);

CREATE TABLE venues (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE venue_sections (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    venue_id        bigint NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    position        integer NOT NULL,
    rows            integer NOT NULL CHECK (rows BETWEEN 1 AND 200),
    seats_per_row   integer NOT NULL CHECK (seats_per_row BETWEEN 1 AND 200),
    UNIQUE (venue_id, name)
);

CREATE TABLE concerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    venue_id        bigint NOT NULL REFERENCES venues (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    artist          text NOT NULL CHECK (length(artist) BETWEEN 1 AND 200),
    description     text,
    poster_url      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX concerts_venue_idx ON concerts (venue_id);

CREATE TABLE shows (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    concert_id                  bigint NOT NULL REFERENCES concerts (id) ON DELETE CASCADE,
    starts_at                   timestamptz NOT NULL,
    sale_opens_at               timestamptz NOT NULL,
    sale_closes_at              timestamptz,
    pre_queue_opens_at          timestamptz,
    hold_seconds                integer NOT NULL DEFAULT 300 CHECK (hold_seconds BETWEEN 5 AND 3600),
    max_seats_per_reservation   integer NOT NULL DEFAULT 4 CHECK (max_seats_per_reservation BETWEEN 1 AND 10),
    queue_admit_per_second      double precision NOT NULL DEFAULT 11 CHECK (queue_admit_per_second >= 0),
    queue_max_active            integer CHECK (queue_max_active IS NULL OR queue_max_active >= 0),
    queue_token_ttl_seconds     integer NOT NULL DEFAULT 600 CHECK (queue_token_ttl_seconds BETWEEN 30 AND 86400),
    queue_oversubscription      double precision DEFAULT 1.5 CHECK (queue_oversubscription IS NULL OR queue_oversubscription > 0),
    queue_paused                boolean NOT NULL DEFAULT false,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (sale_closes_at IS NULL OR sale_closes_at > sale_opens_at),
    CHECK (pre_queue_opens_at IS NULL OR pre_queue_opens_at <= sale_opens_at)
);
CREATE INDEX shows_concert_idx ON shows (concert_id, starts_at);
CREATE INDEX shows_sale_idx ON shows (sale_opens_at, sale_closes_at);

CREATE TABLE show_prices (
    show_id         bigint NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    section_id      bigint NOT NULL REFERENCES venue_sections (id),
    price           bigint NOT NULL CHECK (price >= 0),
    PRIMARY KEY (show_id, section_id)
);

CREATE TABLE reservations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id),
    show_id         bigint NOT NULL REFERENCES shows (id),
    status          text NOT NULL CHECK (status IN ('TEMP_RESERVED', 'RESERVED', 'EXPIRED', 'CANCELLED')),
    total_price     bigint NOT NULL CHECK (total_price >= 0),
    seat_count      integer NOT NULL CHECK (seat_count BETWEEN 1 AND 10),
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz,
    closed_at       timestamptz
);
CREATE INDEX reservations_user_idx ON reservations (user_id, id DESC);
CREATE INDEX reservations_show_status_idx ON reservations (show_id, status);
-- The expiry sweep's scan: live holds by deadline.
CREATE INDEX reservations_hold_expiry_idx ON reservations (expires_at) WHERE status = 'TEMP_RESERVED';
-- One live hold per user and show.
CREATE UNIQUE INDEX reservations_one_hold_uq ON reservations (user_id, show_id) WHERE status = 'TEMP_RESERVED';

CREATE TABLE seats (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id         bigint NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    section_id      bigint NOT NULL REFERENCES venue_sections (id),
    section         text NOT NULL,
    row             integer NOT NULL CHECK (row >= 1),
    number          integer NOT NULL CHECK (number >= 1),
    price           bigint NOT NULL CHECK (price >= 0),
    status          text NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'TEMP_RESERVED', 'RESERVED')),
    reservation_id  bigint REFERENCES reservations (id),
    hold_expires_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (show_id, section, row, number),
    -- A seat that is not AVAILABLE names the reservation holding it; an AVAILABLE one names none.
    CHECK ((status = 'AVAILABLE') = (reservation_id IS NULL)),
    CHECK ((status = 'TEMP_RESERVED') = (hold_expires_at IS NOT NULL))
);
CREATE INDEX seats_show_status_idx ON seats (show_id, status);
CREATE INDEX seats_reservation_idx ON seats (reservation_id) WHERE reservation_id IS NOT NULL;

CREATE TABLE reservation_seats (
    reservation_id  bigint NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    seat_id         bigint NOT NULL REFERENCES seats (id) ON DELETE CASCADE,
    show_id         bigint NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    price           bigint NOT NULL CHECK (price >= 0),
    -- true while the reservation is TEMP_RESERVED or RESERVED
    live            boolean NOT NULL DEFAULT true,
    PRIMARY KEY (reservation_id, seat_id)
);
-- I1: a seat belongs to at most one live (TEMP_RESERVED or RESERVED) reservation.
CREATE UNIQUE INDEX reservation_seats_one_live_uq ON reservation_seats (seat_id) WHERE live;

CREATE TABLE inventory (
    show_id         bigint PRIMARY KEY REFERENCES shows (id) ON DELETE CASCADE,
    total           integer NOT NULL CHECK (total >= 0),
    remaining       integer NOT NULL,
    version         bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (remaining BETWEEN 0 AND total)
);

CREATE TABLE payments (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reservation_id              bigint NOT NULL REFERENCES reservations (id),
    user_id                     bigint NOT NULL REFERENCES users (id),
    amount                      bigint NOT NULL CHECK (amount >= 0),
    method                      text NOT NULL CHECK (method IN ('BALANCE', 'CARD')),
    status                      text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'REFUNDED')),
    idempotency_key             text,
    provider_idempotency_key    text UNIQUE,
    provider_reference          text,
    failure_code                text,
    attempts                    integer NOT NULL DEFAULT 0,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    settled_at                  timestamptz
);
CREATE INDEX payments_reservation_idx ON payments (reservation_id);
CREATE INDEX payments_pending_idx ON payments (updated_at) WHERE status = 'PENDING';
-- I4: a reservation has at most one payment in flight or succeeded.
CREATE UNIQUE INDEX payments_one_live_uq ON payments (reservation_id) WHERE status IN ('PENDING', 'SUCCEEDED');

CREATE TABLE idempotency_keys (
    user_id         bigint NOT NULL,
    scope           text NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    text NOT NULL,
    state           text NOT NULL CHECK (state IN ('IN_PROGRESS', 'DONE')),
    response_status integer,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, scope, key)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at);

CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    event_type      text NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    bigint NOT NULL,
    show_id         bigint,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
"""

DOWNGRADE = """
DROP TABLE IF EXISTS outbox;
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS payments;
DROP TABLE IF EXISTS inventory;
DROP TABLE IF EXISTS reservation_seats;
DROP TABLE IF EXISTS seats;
DROP TABLE IF EXISTS reservations;
DROP TABLE IF EXISTS show_prices;
DROP TABLE IF EXISTS shows;
DROP TABLE IF EXISTS concerts;
DROP TABLE IF EXISTS venue_sections;
DROP TABLE IF EXISTS venues;
DROP TABLE IF EXISTS balance_ledger;
DROP TABLE IF EXISTS users;
"""


def upgrade() -> None:
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(DOWNGRADE):
        op.execute(statement)


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
