"""`bench flash-sale --bots N`: the toll at the queue's door against three kinds of bot.

With bots the bench show's toll is on (TOLL_DIFFICULTY, ALTCHA maxnumber) and every honest fan
pays it the way the page's widget does: GET the challenge, find the number, send the payload in
X-Altcha (TollTimed wraps the crowd's client; the fans' own code in flash_sale.py is unchanged).
The bots, N split in three:
- skip    one account each; joins without a solution, or with a forged one (a fetched challenge
          and a number that does not solve it), and asks for an admission token without a place.
- replay  one account each; replays solutions honest fans spent on their joins (captured off the
          wire): another account's solution, already spent.
- farm    many accounts of one operator who pays the toll on each (solves every challenge) and
          hammers: polls at 0.1 s whatever poll_after_seconds says, and re-sends every spent
          solution once more to dip twice. Otherwise it buys like a fan.
Admissions are the server's (the admission worker's queue.admitted events); seats from the database.
Goal: bots that do not pay get no place and no admission; bots that pay get no more admissions
than their share of the work (solved challenges), like the honest fans.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from boxoffice.bench.client import HttpPool, Response, Timed
from boxoffice.bench.flash_sale import SaleState, sleep_or_stop
from boxoffice.waiting_room import toll

KINDS = ("skip", "replay", "farm")
# The bench show's base difficulty with bots (the crowd factor may raise it up to 10x): a few
# thousand SHA-256 per place, milliseconds on the bench's machine.
TOLL_DIFFICULTY = 2000
FARM_POLL_CAP_SECONDS = 0.1
BOT_PACE_SECONDS = (0.3, 0.6)


@dataclass
class Account:
    """One account's part in the sale, as the client saw it."""

    kind: str  # fans | skip | replay | farm
    user_id: int
    token: str
    joins_sent: int = 0
    joins_accepted: int = 0
    unpaid_joins_accepted: int = 0  # accepted without a fresh solution of its own
    refused: Counter[str] = field(default_factory=Counter)
    solved: int = 0
    hashes: int = 0
    solve_seconds: float = 0.0
    tokens_got: int = 0  # admission tokens handed to it (skip bots ask without a place)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def answer(self, response: Response | None, paid: bool) -> None:
        self.joins_sent += 1
        if response is None:
            self.refused["connection"] += 1
        elif response.status in (200, 201):
            self.joins_accepted += 1
            self.unpaid_joins_accepted += 0 if paid else 1
        else:
            self.refused[f"{response.status} {response.problem_code()}".strip()] += 1


@dataclass
class Toll:
    """Shared by the crowd's clients: the accounts by bearer header, the solutions spent by honest
    fans (what the replay bots capture)."""

    show_id: int
    accounts: dict[str, Account] = field(default_factory=dict)
    captured: list[str] = field(default_factory=list)
    asked: int = 0  # challenges asked for so far (the farm's accounts take their turns among the fans)

    def add(self, account: Account) -> Account:
        self.accounts[account.auth["Authorization"]] = account
        return account

    async def solution(self, timed: Timed, account: Account) -> str | None:
        """Fetch a challenge and solve it (the widget's work, counted for the account)."""
        self.asked += 1
        response = await timed.call(
            "challenge", "GET", f"/api/shows/{self.show_id}/queue/challenge", headers=account.auth
        )
        if response is None or response.status != 200:
            return None
        challenge = response.json() or {}
        started = time.perf_counter()
        number = toll.solve(challenge)
        account.solve_seconds += time.perf_counter() - started
        if number is None:
            return None
        account.solved += 1
        account.hashes += number + 1
        return toll.payload(challenge, number)


class TollTimed(Timed):
    """The crowd's client with the toll paid on every join (POST /api/queue), as the page does;
    a farm account's spent solution is sent once more (the double dip)."""

    def __init__(self, pool: HttpPool, t0: float, tolls: Toll, **timed: Any) -> None:
        super().__init__(pool, t0, **timed)
        self.tolls = tolls

    async def call(
        self,
        step: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (200, 201, 204),
    ) -> Response | None:
        account = self.tolls.accounts.get((headers or {}).get("Authorization", ""))
        if step != "join" or method != "POST" or account is None:
            return await super().call(step, method, path, json=json, headers=headers, ok_statuses=ok_statuses)
        solution = await self.tolls.solution(self, account)
        paid = {**(headers or {}), **({"X-Altcha": solution} if solution else {})}
        response = await super().call(step, method, path, json=json, headers=paid, ok_statuses=ok_statuses)
        if response is not None and response.status == 429:
            return response  # shed before the toll was looked at: the caller retries with a new one
        account.answer(response, paid=solution is not None)
        if solution and response is not None and response.status in (200, 201):
            if account.kind == "fans":
                self.tolls.captured.append(solution)
            elif account.kind == "farm":
                again = await super().call("bot_join", method, path, json=json, headers=paid)
                account.answer(again, paid=False)
        return response


async def take_turn(tolls: Toll, turn: int, state: SaleState, limit_seconds: float = 5.0) -> None:
    """Wait until `turn` challenges were asked for: the farm's accounts arrive spread among the
    honest fans (not all behind them, which their tasks' start order would do), as on the day."""
    deadline = time.perf_counter() + limit_seconds
    while tolls.asked < turn and time.perf_counter() < deadline and not state.abort.is_set():
        await asyncio.sleep(0.005)


def split(bots: int) -> dict[str, int]:
    """N bots in three kinds (skip and replay get the remainder last)."""
    third = bots // 3
    return {"skip": third, "replay": third, "farm": bots - 2 * third}


def _forged(challenge: dict[str, Any], rng: random.Random) -> str:
    """A payload for a real challenge with a number that does not solve it (no work done)."""
    top = int(challenge.get("maxnumber") or 0)
    number = rng.randint(0, max(0, top))
    if _solves(challenge, number):
        number = top + 1  # beyond maxnumber: never the answer
    return toll.payload(challenge, number)


def _solves(challenge: dict[str, Any], number: int) -> bool:
    import hashlib

    return hashlib.sha256(f"{challenge['salt']}{number}".encode()).hexdigest() == str(challenge["challenge"])


def _over(state: SaleState, crowd_done: asyncio.Event) -> bool:
    return state.stop.is_set() or state.abort.is_set() or crowd_done.is_set()


async def _ask_token(timed: Timed, account: Account, where: dict[str, int]) -> None:
    response = await timed.call(
        "bot_token", "POST", "/api/reservations/token", json=where, headers=account.auth
    )
    if response is not None and response.status in (200, 201) and (response.json() or {}).get("token"):
        account.tokens_got += 1


async def skip_bot(
    account: Account,
    *,
    timed: Timed,
    state: SaleState,
    where: dict[str, int],
    crowd_done: asyncio.Event,
    rng: random.Random,
) -> None:
    """Joins without paying: no solution, or a forged one; then asks for a token anyway."""
    attempt = 0
    while not _over(state, crowd_done):
        headers = account.auth
        if attempt % 2:
            response = await timed.call(
                "bot_challenge", "GET", f"/api/shows/{where['show_id']}/queue/challenge", headers=account.auth
            )
            if response is not None and response.status == 200:
                headers = {**account.auth, "X-Altcha": _forged(response.json() or {}, rng)}
        account.answer(await timed.call("bot_join", "POST", "/api/queue", json=where, headers=headers), False)
        if attempt % 4 == 0:
            await _ask_token(timed, account, where)
        attempt += 1
        await sleep_or_stop(state, rng.uniform(*BOT_PACE_SECONDS), crowd_done)


async def replay_bot(
    account: Account,
    *,
    timed: Timed,
    state: SaleState,
    where: dict[str, int],
    crowd_done: asyncio.Event,
    tolls: Toll,
    rng: random.Random,
) -> None:
    """Replays solutions honest fans spent (captured): another account's, used already."""
    attempt = 0
    while not _over(state, crowd_done):
        if tolls.captured:
            headers = {**account.auth, "X-Altcha": rng.choice(tolls.captured)}
            response = await timed.call("bot_join", "POST", "/api/queue", json=where, headers=headers)
            account.answer(response, False)
            if attempt % 4 == 0:
                await _ask_token(timed, account, where)
            attempt += 1
        await sleep_or_stop(state, rng.uniform(*BOT_PACE_SECONDS), crowd_done)


# ---------------------------------------------------------------------------------------------
# the report


def report(
    accounts: list[Account],
    admitted_order: list[int],
    seats_by_user: dict[int, int],
    timed: list[Timed],
) -> dict[str, Any]:
    """Per kind (honest fans first): accounts, joins, refusals by code, work, admissions, seats;
    the shares of admissions against the shares of accounts and of work."""
    admitted = set(admitted_order)
    kinds: dict[str, dict[str, Any]] = {}
    for kind in ("fans", *KINDS):
        mine = [a for a in accounts if a.kind == kind]
        if not mine:
            continue
        refused: Counter[str] = Counter()
        for a in mine:
            refused.update(a.refused)
        kinds[kind] = {
            "accounts": len(mine),
            "joins_sent": sum(a.joins_sent for a in mine),
            "joins_accepted": sum(a.joins_accepted for a in mine),
            "unpaid_joins_accepted": sum(a.unpaid_joins_accepted for a in mine),
            "refused": dict(refused.most_common()),
            "challenges_solved": sum(a.solved for a in mine),
            "hashes": sum(a.hashes for a in mine),
            "solve_ms_mean": round(
                sum(a.solve_seconds for a in mine) / max(1, sum(a.solved for a in mine)) * 1000, 2
            ),
            "admission_tokens_got": sum(a.tokens_got for a in mine),
            "admitted": sum(1 for a in mine if a.user_id in admitted),
            "seats_bought": sum(seats_by_user.get(a.user_id, 0) for a in mine),
        }
    total = {
        name: sum(k[name] for k in kinds.values())
        for name in ("accounts", "challenges_solved", "hashes", "admitted", "seats_bought")
    }
    for k in kinds.values():
        for name, share in (
            ("accounts", "account_share"),
            ("challenges_solved", "work_share"),
            ("hashes", "hash_share"),
            ("admitted", "admission_share"),
            ("seats_bought", "seat_share"),
        ):
            k[share] = round(k[name] / total[name], 4) if total[name] else None
    fans = kinds.get("fans", {})
    fan_rate = fans["admitted"] / fans["challenges_solved"] if fans.get("challenges_solved") else None
    for k in kinds.values():
        rate = k["admitted"] / k["challenges_solved"] if k["challenges_solved"] else None
        vs_fans = round(rate / fan_rate, 3) if rate is not None and fan_rate else None
        k["admitted_per_solved_vs_fans"] = vs_fans
    steps: dict[str, Any] = {}
    for t in timed:
        for name in ("challenge", "bot_join", "bot_token", "bot_challenge"):
            if name in t.steps:
                steps.setdefault(name, t.steps[name].summary())
    return {
        "toll_difficulty": TOLL_DIFFICULTY,
        "kinds": kinds,
        "total_admitted": total["admitted"],
        "steps": {
            name: {k: s[k] for k in ("requests", "succeeded", "failed", "latency_ms", "errors") if k in s}
            for name, s in steps.items()
        },
        "method": (
            "admitted: accounts in the admission worker's queue.admitted events (the server's word); "
            "seats_bought: RESERVED seats in the database; work_share: the kind's share of solved "
            "challenges (hash_share: of SHA-256 computed); admitted_per_solved_vs_fans: admissions "
            "per solved challenge against the honest fans' (1.0 = the same deal). Skip and replay "
            "bots solve nothing: any place, token or admission of theirs is a breach."
        ),
    }


def targets(section: dict[str, Any]) -> list[dict[str, Any]]:
    kinds = section["kinds"]
    out: list[dict[str, Any]] = []
    for kind, label in (("skip", "bots that skip the toll"), ("replay", "bots that replay solutions")):
        k = kinds.get(kind)
        if not k:
            continue
        got = k["joins_accepted"] + k["admission_tokens_got"] + k["admitted"] + k["seats_bought"]
        out.append(
            {
                "name": f"{label}: places, tokens, admissions, seats",
                "goal": "0",
                "measured": (
                    f"{k['joins_accepted']} places, {k['admission_tokens_got']} tokens, "
                    f"{k['admitted']} admitted, {k['seats_bought']} seats of {k['joins_sent']} joins"
                ),
                "met": got == 0,
            }
        )
    farm = kinds.get("farm")
    if farm:
        total = section["total_admitted"]
        share = farm["work_share"] or 0.0
        fair = share * total
        out.append(
            {
                "name": "bots that pay the toll (many accounts): admissions vs their work",
                "goal": "admissions <= share of solved challenges x admitted (+20%, +2 for small samples)",
                "measured": (
                    f"{farm['admitted']} of {total} admitted ({farm['admission_share']}) for "
                    f"{share} of the work; {farm['unpaid_joins_accepted']} places without paying"
                ),
                "met": farm["admitted"] <= fair * 1.2 + 2 and farm["unpaid_joins_accepted"] == 0,
            }
        )
    return out
