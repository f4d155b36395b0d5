"""`bench flash-sale --waitlist`: a second chance in order, measured.

`--waitlist-fans` more fans arrive with the crowd but do not queue: they watch the show's public
serving board (GET /api/shows/{id}/queue/serving) and join its waitlist as soon as it says SOLD_OUT
or LAST_SEATS_HELD. The seats that come back (the crowd's walk-aways' holds expiring, offers passed
or let lapse) are offered to them by the hold-expiry job. Each polls its place
(GET /api/shows/{id}/waitlist) and, offered a seat, pays for it (pay_ratio), passes at once
(DELETE the hold: the seat goes to the next fan) or lets the offer lapse. A fan still waiting
leaves when the show says SOLD_OUT, or after `patience` seconds.

The fairness is read from the database afterwards (db.audit.waitlist_fairness): offers made, taken,
lapsed; pairs of fans offered out of waitlist order (goal 0); crowd holds made while fans waited
(goal 0: returned seats are the waitlist's).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boxoffice.bench.client import Timed
from boxoffice.bench.flash_sale import SaleState, sleep_or_stop

SOLD_STATES = ("SOLD_OUT", "LAST_SEATS_HELD")
POLL_SECONDS = (0.6, 1.0)


@dataclass
class WaitlistFan:
    user_id: int
    token: str
    outcome: str = "not_started"
    joined_at: float | None = None
    offered_seen_at: float | None = None
    offer_seen_after: float | None = None  # seconds from the offer (server's time) to the fan seeing it


@dataclass
class WaitlistRun:
    fans: list[WaitlistFan]
    hold_seconds: int
    pay_ratio: float
    patience: float
    offer_delays: list[float] = field(default_factory=list)


async def _board(timed: Timed, show_id: int) -> str | None:
    response = await timed.call("wl_board", "GET", f"/api/shows/{show_id}/queue/serving")
    if response is None or response.status not in (200, 304):
        return None
    return str((response.json() or {}).get("sale_state") or "") if response.body else None


async def run_waitlist_fan(
    fan: WaitlistFan,
    *,
    timed: Timed,
    state: SaleState,
    run: WaitlistRun,
    show_id: int,
    crowd_done: asyncio.Event,
    rng: random.Random,
) -> None:
    auth = {"Authorization": f"Bearer {fan.token}"}
    path = f"/api/shows/{show_id}/waitlist"
    # 1. wait for the show to sell out (or its last seats to be held), then join
    while True:
        if state.abort.is_set():
            fan.outcome = "aborted"
            return
        sale_state = await _board(timed, show_id)
        if sale_state in SOLD_STATES:
            response = await timed.call("wl_join", "POST", path, headers=auth)
            if response is not None and response.status in (200, 201):
                break
            if response is None or response.problem_code() != "WAITLIST_NOT_OPEN":
                fan.outcome = "join_failed"
                return
        elif crowd_done.is_set():
            fan.outcome = "never_sold_out"
            return
        await sleep_or_stop(state, rng.uniform(*POLL_SECONDS), state.abort)
    fan.joined_at = time.perf_counter()
    # 2. wait for an offer
    body: dict[str, Any] = {}
    while True:
        response = await timed.call("wl_status", "GET", path, headers=auth)
        body = (response.json() or {}) if response is not None and response.status == 200 else {}
        status = body.get("status")
        if status == "OFFERED":
            break
        if status in ("TAKEN", "LAPSED", "LEFT", "SKIPPED", "NOT_ON_WAITLIST"):
            fan.outcome = str(status).lower()
            return
        if time.perf_counter() - fan.joined_at > run.patience or state.abort.is_set():
            await timed.call("wl_leave", "DELETE", path, headers=auth)
            fan.outcome = "gave_up"
            return
        if await _board(timed, show_id) == "SOLD_OUT":
            fan.outcome = "sold_out_waiting"
            return
        await sleep_or_stop(state, rng.uniform(*POLL_SECONDS), state.abort)
    # 3. the offer: pay, pass or let it lapse
    fan.offered_seen_at = time.perf_counter()
    expires = body.get("offer_expires_at")
    if expires:
        offered = datetime.fromisoformat(str(expires).replace("Z", "+00:00")).timestamp() - run.hold_seconds
        fan.offer_seen_after = max(0.0, time.time() - offered)
        run.offer_delays.append(fan.offer_seen_after)
    reservation_id = body.get("reservation_id")
    roll = rng.random()
    if roll < run.pay_ratio:
        response = await timed.call(
            "wl_pay",
            "POST",
            "/api/payments",
            json={"reservation_id": reservation_id, "method": "BALANCE"},
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        )
        if response is not None and response.status in (200, 201):
            fan.outcome = "took_offer"
            state.note_sale(1)
        else:
            fan.outcome = "pay_failed"
    elif roll < run.pay_ratio + (1 - run.pay_ratio) / 2:
        await timed.call("wl_pass", "DELETE", f"/api/reservations/{reservation_id}", headers=auth)
        fan.outcome = "passed_offer"
    else:
        fan.outcome = "let_offer_lapse"


def report(run: WaitlistRun, audit: dict[str, Any], timed: Timed) -> dict[str, Any]:
    outcomes = Counter(f.outcome for f in run.fans)
    delays = sorted(run.offer_delays)
    steps = {
        name: {k: s[k] for k in ("requests", "succeeded", "failed", "errors")}
        for name in ("wl_board", "wl_join", "wl_status", "wl_pay", "wl_pass", "wl_leave")
        if name in timed.steps
        for s in [timed.steps[name].summary()]
    }
    return {
        "fans": len(run.fans),
        "joined": sum(1 for f in run.fans if f.joined_at is not None),
        "outcomes": dict(outcomes.most_common()),
        "offer_seen_after_seconds": {
            "p50": round(statistics.median(delays), 2) if delays else None,
            "max": round(delays[-1], 2) if delays else None,
            "note": "from the offer (its expiry minus the hold time) to the fan's poll seeing it",
        },
        "database": audit,
        "steps": steps,
    }


def targets(section: dict[str, Any]) -> list[dict[str, Any]]:
    db = section["database"]
    return [
        {
            "name": "waitlist: offers follow waitlist order",
            "goal": "0 inversions",
            "measured": (
                f"{db['inversions']} inversions; {db['offers_made']} offers made, {db['taken']} taken, "
                f"{db['lapsed']} lapsed, {db['skipped']} skipped, {db['waiting']} still waiting"
            ),
            "met": db["inversions"] == 0,
        },
        {
            "name": "waitlist: returned seats kept from the crowd while fans wait",
            "goal": "0 crowd holds while anyone waited",
            "measured": f"{db['crowd_holds_while_waiting']} crowd holds",
            "met": db["crowd_holds_while_waiting"] == 0,
        },
    ]
