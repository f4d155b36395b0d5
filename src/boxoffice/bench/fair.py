"""The flash sale's fairness extras, wired into the crowd (runner.py) in three calls: `prepare`
(untimed: the bots' and the waitlist fans' accounts), `clients` and `start` (at t0: the crowd's
client pays the toll, the bots and waitlist fans join the timed phase), then `sections` (the
report's "bots" and "waitlist" sections, read from the server's events and the database)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from boxoffice.bench import bots, flash_sale, repository, setup, waitlist
from boxoffice.bench.client import HttpPool, Timed
from boxoffice.db.audit import waitlist_fairness
from boxoffice.runtime import Runtime


@dataclass
class Extras:
    bot_accounts: list[bots.Account] = field(default_factory=list)
    waitlist_fans: list[waitlist.WaitlistFan] = field(default_factory=list)
    tolls: bots.Toll | None = None
    fans_timed: bots.TollTimed | None = None
    bots_timed: Timed | None = None
    waitlist_timed: Timed | None = None
    waitlist_run: waitlist.WaitlistRun | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    watcher: asyncio.Task[None] | None = None  # sets crowd_done once the buying crowd is done

    def clients(self, pool: HttpPool, t0: float, fans_timed: dict[str, Any]) -> None:
        """The timed clients (on the crowd's pool): the honest fans' pays the toll when it is on
        (and carries `fans_timed`, the --trace-sample options)."""
        if self.tolls is not None:
            self.fans_timed = bots.TollTimed(pool, t0, self.tolls, **fans_timed)
            self.bots_timed = bots.TollTimed(pool, t0, self.tolls)
        if self.waitlist_fans:
            self.waitlist_timed = Timed(pool, t0)

    def start(
        self,
        sale: Any,
        show: setup.SaleShow,
        fans: list[flash_sale.Fan],
        fan_tasks: list[asyncio.Task[Any]],
        state: flash_sale.SaleState,
        rng: random.Random,
    ) -> None:
        """Bots and waitlist fans enter the sale with the crowd (tasks in `self.tasks`)."""
        crowd_done = asyncio.Event()
        where = {"concert_id": show.concert_id, "show_id": show.show_id}
        crowd = list(fan_tasks)
        if self.tolls is not None and self.bots_timed is not None:
            for f in fans:
                self.tolls.add(bots.Account("fans", f.user_id, f.access_token))
            farm_plan = flash_sale.FanPlan(
                pay_ratio=sale.pay_ratio,
                poll_cap_seconds=bots.FARM_POLL_CAP_SECONDS,
                max_seats=show.max_seats,
                hopeful_seconds=sale.hold_seconds + 15.0,
            )
            for i, account in enumerate(self.bot_accounts):
                self.tolls.add(account)
                seed = random.Random(rng.random())
                if account.kind == "farm":
                    fan = flash_sale.Fan(-1 - i, account.user_id, account.token)
                    task = asyncio.create_task(
                        self._farm(
                            fan, sale, show, state, farm_plan, seed, turn=seed.randrange(len(fans) + 1)
                        )
                    )
                    crowd.append(task)
                elif account.kind == "skip":
                    task = asyncio.create_task(
                        bots.skip_bot(
                            account,
                            timed=self.bots_timed,
                            state=state,
                            where=where,
                            crowd_done=crowd_done,
                            rng=seed,
                        )
                    )
                else:
                    task = asyncio.create_task(
                        bots.replay_bot(
                            account,
                            timed=self.bots_timed,
                            state=state,
                            where=where,
                            crowd_done=crowd_done,
                            tolls=self.tolls,
                            rng=seed,
                        )
                    )
                self.tasks.append(task)
        if self.waitlist_fans and self.waitlist_timed is not None:
            self.waitlist_run = waitlist.WaitlistRun(
                self.waitlist_fans,
                hold_seconds=show.hold_seconds,
                pay_ratio=sale.pay_ratio,
                patience=4.0 * show.hold_seconds + 30.0,
            )
            for waiter in self.waitlist_fans:
                self.tasks.append(
                    asyncio.create_task(
                        waitlist.run_waitlist_fan(
                            waiter,
                            timed=self.waitlist_timed,
                            state=state,
                            run=self.waitlist_run,
                            show_id=show.show_id,
                            crowd_done=crowd_done,
                            rng=random.Random(rng.random()),
                        )
                    )
                )
        if self.tasks:

            async def watch() -> None:
                await asyncio.gather(*crowd, return_exceptions=True)
                crowd_done.set()

            self.watcher = asyncio.create_task(watch())

    async def _farm(
        self,
        fan: flash_sale.Fan,
        sale: Any,
        show: setup.SaleShow,
        state: flash_sale.SaleState,
        plan: flash_sale.FanPlan,
        rng: random.Random,
        turn: int,
    ) -> None:
        """A farm account: arrives at a random place among the fans, then buys like one."""
        assert self.tolls is not None and self.bots_timed is not None
        await bots.take_turn(self.tolls, turn, state)
        await flash_sale.run_fan(
            fan,
            timed=self.bots_timed,
            state=state,
            plan=plan,
            concert_id=show.concert_id,
            show_id=show.show_id,
            rng=rng,
        )


async def prepare(runtime: Runtime, bot_count: int, waitlist_count: int, show: setup.SaleShow) -> Extras:
    """Untimed: the bots' accounts (farm accounts with money to buy) and the waitlist fans'."""
    extras = Extras()
    balance = show.price * show.max_seats * 2
    if bot_count:
        extras.tolls = bots.Toll(show.show_id)
        for kind, n in bots.split(bot_count).items():
            if not n:
                continue
            made = await setup.create_fans(runtime, n, balance=balance if kind == "farm" else 0)
            extras.bot_accounts += [
                bots.Account(kind, uid, tok) for uid, tok in zip(made.user_ids, made.tokens, strict=True)
            ]
    if waitlist_count:
        made = await setup.create_fans(runtime, waitlist_count, balance=balance)
        extras.waitlist_fans = [
            waitlist.WaitlistFan(uid, tok) for uid, tok in zip(made.user_ids, made.tokens, strict=True)
        ]
    return extras


async def sections(
    runtime: Runtime, show_id: int, extras: Extras | None, admitted_order: list[int]
) -> dict[str, Any]:
    """The report's "bots" and "waitlist" sections (none without --bots / --waitlist)."""
    out: dict[str, Any] = {}
    if extras is None:
        return out
    if extras.tolls is not None:
        async with runtime.sessions() as session:  # reads only
            seats = await repository.seats_by_user(session, show_id)
        timed = [t for t in (extras.fans_timed, extras.bots_timed) if t is not None]
        out["bots"] = bots.report(list(extras.tolls.accounts.values()), admitted_order, seats, timed)
    if extras.waitlist_run is not None and extras.waitlist_timed is not None:
        async with runtime.sessions() as session:  # reads only
            audit = await waitlist_fairness(session, show_id)
        out["waitlist"] = waitlist.report(extras.waitlist_run, audit, extras.waitlist_timed)
    return out
