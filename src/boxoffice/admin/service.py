"""Admin reads: the dashboard frame and snapshot, fan lookup, the audit, the CSV export (the audited
cancel-and-refund, which writes, is in admin/flows.py).

Reads go through the owning domains' services (catalog, waiting room, booking, payments); what only
the console needs (sales totals, a fan's orders, the audit) lives in this domain's repository.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.admin import repository, rules
from boxoffice.admin.schemas import Range
from boxoffice.catalog import seatmap
from boxoffice.catalog import service as catalog
from boxoffice.errors import UserNotFound
from boxoffice.kit.clock import iso
from boxoffice.kit.money import format_money
from boxoffice.runtime import Runtime
from boxoffice.salestats import rules as stats_rules
from boxoffice.salestats import store as stats_store
from boxoffice.waiting_room import admission
from boxoffice.waiting_room import service as queue

RECENT_SECONDS = 10  # every frame repeats the last seconds: late flushes (<= 1 s) still land
LATENCY_SECONDS = 60
FAN_ROWS = 100
CSV_PAGE = 1000
# The CSV's `amount` is the integer in the currency's minor unit (for machines); `amount_display`
# the same amount as kit.money formats it for an English-reading spreadsheet.
CSV_LOCALE = "en"


# ---- the dashboard ---------------------------------------------------------------------------------


async def frame(runtime: Runtime, show_id: int) -> dict[str, Any]:
    """One dashboard frame: seats and money from PostgreSQL, the queue and the per-second sale
    statistics from Redis. About five cheap statements; the hub computes it once a second per show
    whatever the number of viewers."""
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        show = await catalog.get_show(session, show_id)
        base, status = await seatmap.seat_statuses(session, show_id)
        totals = await repository.sales_totals(session, show_id)
        q = await queue.admin_view(runtime, session, show_id)
    now_s = int(now.timestamp())
    points = await stats_store.read(runtime.redis, show_id, now_s - LATENCY_SECONDS, now_s + 1, "s")
    recent_window = stats_rules.Window(start=now_s - RECENT_SECONDS, end=now_s + 1, step=1, tier="s")
    recent = stats_rules.series(points, recent_window)
    # Rates over the complete seconds of the recent window (the current one is still filling).
    complete = stats_rules.Window(start=now_s - RECENT_SECONDS, end=now_s, step=RECENT_SECONDS, tier="s")
    rates = {
        name: column[0]
        for name, column in stats_rules.series(points, complete).items()
        if name in stats_rules.COUNTERS
    }
    merged = stats_rules.merge(points)
    latency = {}
    for name, prefix in stats_rules.LATENCIES.items():
        hist = stats_rules.histogram(merged, prefix)
        latency[f"{name}_p50"] = stats_rules.percentile(hist, 0.5)
        latency[f"{name}_p99"] = stats_rules.percentile(hist, 0.99)
    eta = admission.eta_seconds(q.waiting, q.admission_rate, paused=q.paused)
    return {
        "show_id": show_id,
        "at": now,
        "on_sale": show.on_sale(now),
        "currency": show.currency,
        "seats": {
            "total": len(status) - status.count("-"),
            "sold": status.count("R"),
            "held": status.count("T"),
            "available": status.count("A"),
        },
        "sales": totals,
        "queue": {
            "paused": q.paused,
            "admit_per_second": q.admit_per_second,
            "max_active": q.max_active,
            "waiting": q.waiting,
            "active": q.active,
            "admitted_total": q.admitted_total,
            "admission_rate": q.admission_rate,
            "adaptive": q.adaptive,
            "buyer_p99_target_ms": q.buyer_p99_target_ms,
            "buyer_p99_ms": q.buyer_p99_ms,
            "adaptive_rate": q.adaptive_rate,
            "eta_last_seconds": eta,
            "serving": q.serving,
            "next_ticket": q.next_ticket,
        },
        "rates": rates,
        "latency": latency,
        "recent": recent,
        "heat": {"base": base, "status": status},
    }


async def series(runtime: Runtime, show_id: int, range_: Range, sale_opens_at: datetime) -> dict[str, Any]:
    now_s = int(runtime.clock.now().timestamp())
    win = stats_rules.window(range_, now_s, int(sale_opens_at.timestamp()))
    points = await stats_store.read(runtime.redis, show_id, win.start, win.end, win.tier)
    return {"range": range_, "step_seconds": win.step, "series": stats_rules.series(points, win)}


async def snapshot(
    runtime: Runtime, show_id: int, range_: Range, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A frame (the hub's of this second when given) with the series of the chosen range."""
    if current is None:
        current = await frame(runtime, show_id)
    async with runtime.sessions() as session:
        show = await catalog.get_show(session, show_id)
    return {**current, **await series(runtime, show_id, range_, show.sale_opens_at)}


# ---- fans ------------------------------------------------------------------------------------------


async def fan(session: AsyncSession, email: str) -> dict[str, Any]:
    user = await repository.find_user(session, email.strip().lower())
    if user is None:
        raise UserNotFound(f"No user with the email {email}")
    uid = user["id"]
    return {
        "user": user,
        "ledger_balance": await repository.ledger_sum(session, uid),
        "reservations": await repository.fan_reservations(session, uid, FAN_ROWS),
        "payments": await repository.fan_payments(session, uid, FAN_ROWS),
        "ledger": await repository.fan_ledger(session, uid, FAN_ROWS),
        "audit": await repository.list_actions(session, user_id=uid, target_id=None, limit=FAN_ROWS),
        "email_pattern": rules.email_pattern(user["email"]),
        "signals": await repository.signals(session, uid, FAN_ROWS),
    }


async def audit(session: AsyncSession, *, user_id: int | None, reservation_id: int | None) -> dict[str, Any]:
    items = await repository.list_actions(session, user_id=user_id, target_id=reservation_id, limit=200)
    return {"items": items}


# ---- CSV export ------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "reservation_id",
    "email",
    "seats",
    "seat_count",
    "amount",
    "method",
    "status",
    "payment_status",
    "created_at",
    "paid_at",
    "closed_at",
    "tickets_used",
    "checked_in_at",
    "currency",
    "amount_display",
)


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """ISO 8601 times; cells a spreadsheet would run as a formula are quoted with a leading '."""
    if isinstance(value, datetime):
        return iso(value)
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


async def ensure_show(runtime: Runtime, show_id: int) -> None:
    async with runtime.sessions() as session:
        await catalog.get_show(session, show_id)


async def sales_csv(runtime: Runtime, show_id: int) -> AsyncIterator[str]:
    """A show's reservations as CSV, streamed page by page (keyset), each page its own short read."""
    yield _csv_line(list(CSV_COLUMNS))
    after = 0
    while True:
        async with runtime.sessions() as session:
            rows = await repository.sales_page(session, show_id, after, CSV_PAGE)
        for r in rows:
            yield _csv_line(
                [
                    _cell(v)
                    for v in (
                        r["reservation_id"],
                        r["email"],
                        r["seats"],
                        r["seat_count"],
                        r["total_price"],
                        r["method"],
                        r["status"],
                        r["payment_status"],
                        r["created_at"],
                        r["paid_at"],
                        r["closed_at"],
                        r["tickets_used"],
                        r["checked_in_at"],
                        r["currency"],
                        format_money(r["total_price"], r["currency"], CSV_LOCALE),
                    )
                ]
            )
        if len(rows) < CSV_PAGE:
            return
        after = rows[-1]["reservation_id"]
