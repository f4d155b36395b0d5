"""Times for people, once: shown in the venue's IANA zone with the zone named ("19:00 KST"), typed
in the venue's zone by the console. The API keeps ISO 8601 UTC with `Z` (kit.clock.iso).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime

DEFAULT_ZONE = "Asia/Seoul"
# Per language: the date and time pattern (CLDR/babel); the zone's abbreviation follows it.
PATTERNS = {"en": "EEE d MMM y, HH:mm", "ko": "y년 M월 d일 (EEE) HH:mm"}
SHORT_PATTERNS = {"en": "d MMM y", "ko": "y년 M월 d일"}


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone `name` (the default zone for a missing or unknown name)."""
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def is_zone(name: str) -> bool:
    """`name` is an IANA zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _language(locale: str | None) -> str:
    return (locale or "en").replace("-", "_").split("_")[0]


def local_time(
    value: datetime | None, zone_name: str | None, locale: str | None = None, *, short: bool = False
) -> str:
    """`value` in the zone, for a reader of `locale`: "Sun 28 Mar 2027, 03:30 CEST" / "2027년 3월
    28일 (일) 09:30 KST"; `short`: the date alone."""
    if value is None:
        return ""
    local = value.astimezone(zone(zone_name))
    language = _language(locale)
    patterns = SHORT_PATTERNS if short else PATTERNS
    text = format_datetime(local, patterns.get(language, patterns["en"]), locale=language)
    return text if short else f"{text} {local.tzname()}"


def zone_abbreviation(zone_name: str | None, at: datetime | None = None) -> str:
    """The zone's short name at `at` (now): "KST", "CET" / "CEST"."""
    return str((at or datetime.now(UTC)).astimezone(zone(zone_name)).tzname())


def zone_label(zone_name: str | None, at: datetime | None = None) -> str:
    """The zone as the console names it next to a form: "Asia/Seoul (KST)"."""
    return f"{zone(zone_name).key} ({zone_abbreviation(zone_name, at)})"


def parse_local(text: str, zone_name: str | None) -> datetime:
    """A wall-clock time typed for the venue ("2027-03-28T02:30") as an aware UTC datetime.
    ValueError for a time the zone skips (the spring-forward gap); in the autumn's repeated hour
    the first (daylight) reading is taken. A text with its own offset keeps it."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    tz = zone(zone_name)
    local = parsed.replace(tzinfo=tz, fold=0)
    back = local.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != parsed:
        raise ValueError(f"{parsed:%Y-%m-%d %H:%M} does not exist in {tz.key} (the clocks skip it)")
    return local.astimezone(UTC)


def to_local_input(value: datetime | None, zone_name: str | None) -> str:
    """An aware time as a datetime-local field's value in the zone ("2027-03-28T03:30:00")."""
    if value is None:
        return ""
    return value.astimezone(zone(zone_name)).replace(tzinfo=None).isoformat(timespec="seconds")
