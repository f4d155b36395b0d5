"""Pure waiting-room rules: admission caps, the ETA, poll spacing and the pre-queue permutation.

No I/O here (house rule 9). The admission step itself (k = min(floor(credit), cap - active), the
credit, the measured rate's EWMA) exists once, as the Lua script in store.py, and is tested there by
driving it (tests/integration/test_admission_lua.py); the numbers it is given (the active-user cap,
the EWMA time constant, the credit bound) come from here.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from datetime import datetime

# A waiter whose last poll / stream heartbeat is older than this is skipped at admission.
STALE_AFTER_SECONDS = 180
# Time constant of the measured admission rate (EWMA over how fast `serving` moves).
RATE_TAU_SECONDS = 5.0
# Unused admission credit never exceeds one second of the configured rate (no bursts after a pause).
MAX_CREDIT_SECONDS = 1.0
# One tick never walks more than this many tickets (admitted + skipped): bounds Lua time.
MAX_SCAN_PER_TICK = 2000
# poll_after_seconds: near the front 2-3 s, far away ~20 s, always jittered so polls spread.
POLL_NEAR_SECONDS = (2.0, 3.0)
POLL_FAR_SECONDS = 20.0
POLL_UNKNOWN_SECONDS = 15.0


def inventory_cap(remaining: int, oversubscription: float | None) -> int | None:
    """How many admitted users the remaining seats can serve; None when the rule is off."""
    if oversubscription is None:
        return None
    return max(0, math.floor(max(0, remaining) * oversubscription))


def active_cap(max_active: int | None, remaining: int, oversubscription: float | None) -> int | None:
    """The bound on concurrently admitted users: the tighter of max_active and the inventory cap."""
    caps = [c for c in (max_active, inventory_cap(remaining, oversubscription)) if c is not None]
    return min(caps) if caps else None


def eta_seconds(
    position: int, measured_rate: float | None, *, paused: bool, capped: bool = False
) -> int | None:
    """Seconds until admission at the measured rate. None when nobody can honestly say:
    admission paused, or no movement measured while the queue is capped/stalled."""
    if position <= 0:
        return 0
    if paused or measured_rate is None or measured_rate <= 1e-9:
        return None
    del capped  # the measured rate already reflects a cap (it is how fast serving really moved)
    return max(1, math.ceil(position / measured_rate))


_JITTER = random.Random()  # seeded once: a Random() per call read the OS's entropy on every status poll


def poll_after(eta: int | None, rng: random.Random | None = None) -> float:
    """Near the front poll every 2-3 s; far away ~20 s; jitter spreads the herd."""
    r = rng or _JITTER
    if eta is None:
        return round(POLL_UNKNOWN_SECONDS * r.uniform(0.8, 1.2), 1)
    if eta <= 15:
        return round(r.uniform(*POLL_NEAR_SECONDS), 1)
    base = min(POLL_FAR_SECONDS, max(POLL_NEAR_SECONDS[1], eta / 4))
    return round(base * r.uniform(0.85, 1.15), 1)


def phase(
    now: datetime,
    *,
    pre_queue_opens_at: datetime | None,
    sale_opens_at: datetime,
    sale_closes_at: datetime | None,
) -> str:
    if sale_closes_at is not None and now >= sale_closes_at:
        return "CLOSED"
    if now >= sale_opens_at:
        return "OPEN"
    if pre_queue_opens_at is not None and now >= pre_queue_opens_at:
        return "PRE_QUEUE"
    return "NOT_OPEN"


def sale_state(phase_now: str, *, paused: bool, remaining: int, unsold: int) -> str:
    """What the public serving resource says of the sale. SOLD_OUT only when no seat can come back
    (none available, none held); LAST_SEATS_HELD while the last ones are held (a lapse returns them)."""
    if phase_now in ("NOT_OPEN", "PRE_QUEUE", "CLOSED"):
        return phase_now
    if remaining <= 0:
        return "LAST_SEATS_HELD" if unsold > 0 else "SOLD_OUT"
    return "PAUSED" if paused else "OPEN"


def commitment(seed_hex: str) -> str:
    """Published before the sale: SHA-256 over the seed's bytes."""
    return hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()


def permutation_key(seed_hex: str, user_id: int) -> str:
    return hmac.new(bytes.fromhex(seed_hex), str(user_id).encode(), hashlib.sha256).hexdigest()


def prequeue_order(seed_hex: str, join_list: list[int]) -> list[int]:
    """The keyed permutation: distinct pre-queue joiners sorted by HMAC-SHA256(seed, user_id).

    Anyone holding the revealed seed and the join list recomputes it; ticket i+1 goes to order[i].
    """
    seen: set[int] = set()
    distinct = []
    for user_id in join_list:
        if user_id not in seen:
            seen.add(user_id)
            distinct.append(user_id)
    return sorted(distinct, key=lambda u: permutation_key(seed_hex, u))


# ------------------------------------------------------------------------- adaptive admission
# The admission worker steers each show's admission rate from the buyers' measured latency (the
# p99 of holds and payments over the last ADAPT_WINDOW_SECONDS, from every API process through
# the sale statistics in Redis) toward BOXOFFICE_BUYER_P99_TARGET_MS, never above the show's
# configured rate (its ceiling) nor below its floor (adapt_floor). The control law is AIMD, the
# one TCP congestion control uses (RFC 5681; Chiu & Jain, "Analysis of the Increase and Decrease
# Algorithms for Congestion Avoidance in Computer Networks", 1989): over the target, multiply the
# rate by ADAPT_DECREASE (at most once per window, as TCP halves once per round trip: the window
# still holds the samples that caused the cut); at or under it, add ADAPT_INCREASE_SHARE of the
# ceiling per second. Chiu & Jain show AIMD is the linear policy that converges to efficiency and
# to fairness, here between several shows on sale on the same box, each steering its own rate.
#
# A sale starts in slow start (RFC 5681 §3.1): not at the configured rate but at ADAPT_START_RATE
# (at most the ceiling), doubling every ADAPT_WINDOW_SECONDS until the first verdict over the
# target (the first cut, as TCP leaves slow start at the first loss); then AIMD. Starting at the
# ceiling let a whole second's credit in at once (1,475 fans into 2 cores at 2,500/s), and every
# buyer of that first wave waited behind the others before the first verdict could cut the rate
# (the default sale's winning-hold p99 524 -> 373 ms, payments 442 -> 297 ms, medians of 3; 500
# seats sold by the 8th second either way: `docs/benchmarks.md`, fifth round). 25 fans a second
# rather than 50 halved that first wave (30-32 winning holds in its second, not 60-91) and the
# sale's winning-hold p99 with it (69 against 91 ms, payments 69 against 100 ms, medians of 3
# interleaved; sold out no later: ninth round).
# The rate grows only while fans wait behind it (RFC 7661: no growth while application-limited):
# an empty line, or one the inventory cap blocks, says nothing about what the box can take.
ADAPT_WINDOW_SECONDS = 3
ADAPT_MIN_SAMPLES = 20  # fewer holds+payments than this in the window: no verdict, keep climbing
ADAPT_DECREASE = 0.7  # multiplicative decrease (TCP halves; 0.7 as CUBIC, RFC 9438: gentler steps)
ADAPT_INCREASE_SHARE = 0.05  # additive increase: 5% of the ceiling per second (ceiling in 20 s)
ADAPT_FLOOR_SHARE = 0.05  # never below 5% of the ceiling or the start rate, the lower (nor 1/s)
ADAPT_START_RATE = 25.0  # fans a second a sale starts at (TCP's fixed initial window, RFC 6928)


def start_rate(ceiling: float) -> float:
    """Where a sale's adaptive rate starts: ADAPT_START_RATE, or the configured rate if lower."""
    return min(ceiling, ADAPT_START_RATE)


def adapt_floor(ceiling: float) -> float:
    """5% of the ceiling, at most the start rate (a cut never ends above where a sale starts),
    at least 1 fan a second, never above the ceiling."""
    return min(ceiling, max(1.0, min(ceiling * ADAPT_FLOOR_SHARE, ADAPT_START_RATE)))


def adaptive_rate(
    current: float | None,
    *,
    ceiling: float,
    p99_ms: float | None,
    target_ms: float,
    dt_seconds: float,
    now_ms: int,
    last_cut_ms: int | None,
    previous_ceiling: float | None = None,
    held_back: bool = True,
) -> tuple[float, int | None]:
    """The next admission rate and the time of the last cut. target_ms 0 (adaptive off) or a
    ceiling of 0: the configured rate as it is. A sale's first tick (current None) starts at
    ADAPT_START_RATE. Until the first cut (slow start) the rate doubles every window unless the
    verdict is over the target; after it, no verdict (p99_ms None) or one at or under the target
    is an additive increase; neither grows the rate unless fans are `held_back` by it. A rate
    that was at its ceiling follows the configured rate when the promoter changes it."""
    if target_ms <= 0 or ceiling <= 0:
        return ceiling, None
    if current is None:
        current = start_rate(ceiling)
    elif previous_ceiling is not None and current >= previous_ceiling:
        current = ceiling
    rate = min(max(current, adapt_floor(ceiling)), ceiling)
    if p99_ms is not None and p99_ms > target_ms:
        if last_cut_ms is None or now_ms - last_cut_ms >= ADAPT_WINDOW_SECONDS * 1000:
            return max(adapt_floor(ceiling), rate * ADAPT_DECREASE), now_ms
        return rate, last_cut_ms
    if not held_back:
        return rate, last_cut_ms
    dt = max(0.0, min(dt_seconds, 2 * ADAPT_WINDOW_SECONDS))
    if last_cut_ms is None:
        return min(ceiling, rate * 2 ** (dt / ADAPT_WINDOW_SECONDS)), None
    return min(ceiling, rate + ceiling * ADAPT_INCREASE_SHARE * dt), last_cut_ms
