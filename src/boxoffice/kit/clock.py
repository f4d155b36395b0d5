"""Time is injected where rules depend on it (house rule 7): timezone-aware UTC always."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock:
    """Real time plus an adjustable offset: tests move time forward without freezing it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> datetime:
        self.offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        self.offset = timedelta(0)


def iso(value: datetime) -> str:
    """The one timestamp format of every answer (API, stored idempotent replays, events, CSV):
    ISO 8601 in UTC with a `Z`, as pydantic writes the models' datetimes."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
