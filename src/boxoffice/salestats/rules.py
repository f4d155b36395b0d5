"""Pure rules of the sale statistics (no I/O): latency buckets, percentiles, time windows, series."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# Counters, by their short Redis field names.
COUNTERS: dict[str, str] = {
    "holds_won": "w",
    "holds_refused": "r",
    "holds_expired": "x",
    "payments_succeeded": "ps",
    "payments_failed": "pf",
    "admitted": "a",
}
# Latency histograms: field prefix + bucket index.
LATENCIES: dict[str, str] = {"hold": "h", "payment": "p"}

# Bucket i holds latencies in (GROWTH**(i-1), GROWTH**i] ms; bucket 0 everything up to 1 ms.
# 1.2 keeps the error of a percentile within 10 %, 80 buckets reach ~2 hours.
GROWTH = 1.2
MAX_BUCKET = 80

Range = Literal["5m", "1h", "sale"]
RANGES: dict[str, int] = {"5m": 300, "1h": 3600}
MAX_POINTS = 720
SECOND_TIER_SECONDS = 2 * 3600  # per-second data is kept this long; per-minute data much longer


def bucket(seconds: float) -> int:
    ms = seconds * 1000.0
    if ms <= 1.0:
        return 0
    return min(MAX_BUCKET, math.ceil(math.log(ms) / math.log(GROWTH)))


def bucket_ms(index: int) -> float:
    """The upper bound of a bucket: what a percentile falling into it reports."""
    return float(GROWTH**index)


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of a bucketed histogram in ms, None when it is empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return round(bucket_ms(index), 1)
    return round(bucket_ms(max(histogram)), 1)


@dataclass(frozen=True, slots=True)
class Window:
    """Seconds [start, end) read from `tier` ("s": per second, "m": per minute) in steps of `step`."""

    start: int
    end: int
    step: int
    tier: Literal["s", "m"]


def window(range_: Range, now_s: int, sale_opens_s: int) -> Window:
    """The time range selector: the last 5 minutes, the last hour, or the whole sale so far.
    Steps grow so a chart never gets more than MAX_POINTS points."""
    end = now_s + 1
    span = RANGES.get(range_) or max(60, end - min(sale_opens_s, now_s))
    start = end - span
    if span <= SECOND_TIER_SECONDS:
        step = max(1, math.ceil(span / MAX_POINTS))
        return Window(start=start - start % step, end=end, step=step, tier="s")
    step = 60 * max(1, math.ceil(span / 60 / MAX_POINTS))
    return Window(start=start - start % step, end=end, step=step, tier="m")


SERIES = (*COUNTERS, "hold_p50", "hold_p99", "payment_p50", "payment_p99")


def series(points: Mapping[int, Mapping[str, int]], win: Window) -> dict[str, list[float | None]]:
    """Columns for uPlot: t (epoch seconds of each step) and one list per series. Counters are per
    second (a step's sum divided by the step), latencies the step's p50/p99 in ms."""
    out: dict[str, list[float | None]] = {"t": [], **{name: [] for name in SERIES}}
    unit = 60 if win.tier == "m" else 1
    for t in range(win.start, win.end, win.step):
        merged: dict[str, int] = {}
        for s in range(t, min(t + win.step, win.end), unit):
            for field, n in points.get(s, {}).items():
                merged[field] = merged.get(field, 0) + n
        out["t"].append(t)
        for name, field in COUNTERS.items():
            out[name].append(round(merged.get(field, 0) / win.step, 3))
        for name, prefix in LATENCIES.items():
            hist = histogram(merged, prefix)
            out[f"{name}_p50"].append(percentile(hist, 0.5))
            out[f"{name}_p99"].append(percentile(hist, 0.99))
    return out


def histogram(fields: Mapping[str, int], prefix: str) -> dict[int, int]:
    """The buckets of one latency histogram out of a point's fields ("h12" -> bucket 12)."""
    out: dict[int, int] = {}
    for field, n in fields.items():
        if field.startswith(prefix) and field[len(prefix) :].isdigit():
            index = int(field[len(prefix) :])
            out[index] = out.get(index, 0) + n
    return out


def merge(points: Mapping[int, Mapping[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for fields in points.values():
        for field, n in fields.items():
            merged[field] = merged.get(field, 0) + n
    return merged
