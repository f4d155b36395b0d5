"""kit/timefmt.py: times in the venue's zone with the zone named, across a daylight-saving change
(Europe/Berlin, last Sunday of March 2027: 02:00 CET becomes 03:00 CEST at 01:00 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from boxoffice.kit.timefmt import is_zone, local_time, parse_local, to_local_input, zone_label

BERLIN = "Europe/Berlin"


def test_seoul_is_named_kst_in_english_and_korean() -> None:
    at = datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
    assert local_time(at, "Asia/Seoul", "en") == "Sun 20 Dec 2026, 19:00 KST"
    assert local_time(at, "Asia/Seoul", "ko") == "2026년 12월 20일 (일) 19:00 KST"
    assert local_time(at, "Asia/Seoul", "ko", short=True) == "2026년 12월 20일"
    assert local_time(None, "Asia/Seoul") == ""


def test_berlin_across_the_march_change() -> None:
    before = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    after = datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # one hour later on the clock of the world
    assert local_time(before, BERLIN, "en") == "Sun 28 Mar 2027, 01:30 CET"
    assert local_time(after, BERLIN, "en") == "Sun 28 Mar 2027, 03:30 CEST"
    assert (
        zone_label(BERLIN, before) == "Europe/Berlin (CET)"
        and zone_label(BERLIN, after) == "Europe/Berlin (CEST)"
    )


def test_console_times_are_typed_in_the_venue_zone_across_the_change() -> None:
    assert parse_local("2027-03-28T01:30", BERLIN) == datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    assert parse_local("2027-03-28T03:30", BERLIN) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="does not exist"):
        parse_local("2027-03-28T02:30", BERLIN)  # the clocks skip it
    # the autumn's repeated hour: the first (daylight) reading
    assert parse_local("2027-10-31T02:30", BERLIN) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    assert parse_local("2027-03-28T10:00:00+09:00", BERLIN) == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    assert parse_local("2026-12-20T19:00", "Asia/Seoul") == datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
    for text in ("2027-03-28T01:30:00", "2027-03-28T03:30:00"):
        assert to_local_input(parse_local(text, BERLIN), BERLIN) == text  # round trip for the form


def test_zone_names() -> None:
    assert is_zone("Asia/Seoul") and is_zone(BERLIN)
    assert not is_zone("Mars/Olympus") and not is_zone("../etc/passwd") and not is_zone("")
