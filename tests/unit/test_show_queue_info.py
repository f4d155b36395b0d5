"""The show's queue settings cached as JSON at bo:{S}:q:show (waiting_room.service.ShowQueueInfo)
survive a rolling deploy: a row cached by an older worker lacks the newest fields (they take their
defaults), one cached by a newer worker carries fields this process does not know (left out)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from boxoffice.waiting_room.service import ShowQueueInfo

INFO = ShowQueueInfo(
    show_id=7,
    concert_id=3,
    sale_opens_at=datetime(2027, 4, 1, 10, tzinfo=UTC),
    sale_closes_at=None,
    pre_queue_opens_at=None,
    admit_per_second=40.0,
    max_active=None,
    token_ttl_seconds=600,
    oversubscription=1.5,
    paused=False,
    remaining=100,
    unsold=100,
    pow_difficulty=0,
    adaptive=False,
)


def test_round_trip_keeps_the_static_choice() -> None:
    assert ShowQueueInfo.from_json(INFO.to_json()) == INFO


def test_a_row_cached_before_the_setting_existed_steers() -> None:
    data = json.loads(INFO.to_json())
    del data["adaptive"]
    assert ShowQueueInfo.from_json(json.dumps(data)) == replace(INFO, adaptive=True)


def test_a_field_from_a_newer_worker_is_left_out() -> None:
    data = json.loads(INFO.to_json()) | {"some_later_setting": 1}
    assert ShowQueueInfo.from_json(json.dumps(data)) == INFO
