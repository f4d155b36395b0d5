"""Orchestration of the bench commands: stack -> ceilings -> setup (untimed) -> the timed run ->
settle -> audit -> report. The CLI wiring in commands.py only parses options and calls these."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import resource
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from boxoffice.bench import bots, ceilings, cost, door, fair, flash_sale, repository, setup, waitlist
from boxoffice.bench.burst import Attempt, run_burst, run_grpc_burst
from boxoffice.bench.client import CpuMeter, HttpPool, LoopLateness, MemoryMeter, Timed
from boxoffice.bench.cost import CostOptions
from boxoffice.bench.door import DoorOptions
from boxoffice.bench.report import machine, print_ceilings, print_report, write_html, write_json
from boxoffice.bench.stack import Stack, local_stack, remote_stack
from boxoffice.config import Settings
from boxoffice.db.audit import audit
from boxoffice.kit import heap
from boxoffice.runtime import Runtime, open_runtime

REQUIRED_METRICS = {
    "per-route latency histogram": "boxoffice_http_request_duration_seconds",
    "holds by outcome": "boxoffice_holds_total",
    "confirmations": "boxoffice_confirmations_total",
    "expiries": "boxoffice_expiries_total",
    "queue waiting": "boxoffice_queue_waiting",
    "queue active": "boxoffice_queue_active",
    "queue admission rate": "boxoffice_queue_admission_rate",
    "db pool in use": "boxoffice_db_pool_in_use",
    "outbox lag": "boxoffice_outbox_lag_seconds",
}


@dataclass(frozen=True)
class StackOptions:
    api_workers: int = 2
    target: str | None = None
    data_dir: Path | None = None
    report_dir: Path = Path("bench-reports")
    server_log_level: str = "WARNING"
    ceiling_seconds: float = 2.0
    skip_ceilings: bool = False
    grpc: bool = False  # start (or, with --target, reach at grpc_target) the gRPC TicketService
    grpc_target: str | None = None
    layout: str = "shared"  # or "tiers": the waiting room and the buyers' routes in separate processes
    queue_nice: int = 0  # tiers: the waiting room's process at this niceness
    # The API processes answer sampled requests' wall-clock breakdown (--trace-sample).
    trace_breakdown: bool = False


@dataclass(frozen=True)
class FlashSaleOptions:
    users: int = 1000
    seats: int = 200
    concurrency: int = 200
    pay_ratio: float = 0.9
    hold_seconds: int = 15
    admit_per_second: float | None = None
    poll_cap_seconds: float = 1.0
    max_seconds: float = 150.0
    seed: int = 1
    dashboards: int = 0  # admin dashboard streams open during the sale (what watching it costs)
    bots: int = 0  # bots at the queue's door (bench/bots.py); the show's toll is on with bots
    waitlist: bool = False  # fans who join the waitlist once the show sells out (bench/waitlist.py)
    waitlist_fans: int = 20
    trace_sample: float = 0.0  # share of holds and payments traced (their wall-clock breakdown)


@dataclass(frozen=True)
class BurstOptions:
    attempts: int = 1000
    seats: int = 10
    seats_per_attempt: int = 1
    via: str = "http"  # http | grpc | both (the same burst over each door, HTTP first)
    trace_sample: float = 0.0  # share of the HTTP attempts traced (their wall-clock breakdown)


class AuditFailed(Exception):
    def __init__(self, report_path: Path) -> None:
        super().__init__(str(report_path))
        self.report_path = report_path


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@contextlib.contextmanager
def _stack(settings: Settings, opts: StackOptions, log_dir: Path) -> Iterator[Stack]:
    if opts.target:
        with remote_stack(settings, opts.target, opts.grpc_target) as stack:
            yield stack
    else:
        with local_stack(
            settings,
            api_workers=opts.api_workers,
            data_dir=opts.data_dir,
            log_dir=log_dir,
            server_log_level=opts.server_log_level,
            grpc=opts.grpc,
            layout=opts.layout,
            queue_nice=opts.queue_nice,
            extra_env={"BOXOFFICE_TRACE_BREAKDOWN": "true"} if opts.trace_breakdown else None,
        ) as stack:
            yield stack


def _report_dir(opts: StackOptions, command: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = opts.report_dir / f"{command}-{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(coro: Any) -> Any:
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _base_report(
    command: str, settings: Settings, stack: Stack, opts: StackOptions, config: dict[str, Any]
) -> dict[str, Any]:
    return {
        "command": command,
        "started_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "stack": {
            "target": stack.base_url,
            "started_here": stack.started_here,
            "api_workers": opts.api_workers if stack.started_here else None,
            "layout": opts.layout if stack.started_here else None,
            "queue_nice": opts.queue_nice if stack.started_here else None,
            "server_log_level": opts.server_log_level if stack.started_here else None,
            "embedded_backends": settings.database_url is None and stack.started_here,
        },
        "config": config,
    }


# ---------------------------------------------------------------------------------------------
# audit


async def _audit(runtime: Runtime, console: Console, settle_seconds: float = 20.0) -> dict[str, Any]:
    """I1, I3, I4 at once; I2 (inventory) is retried while the expiry sweep and recount catch up."""
    deadline = time.monotonic() + settle_seconds
    while True:
        async with runtime.sessions() as session, session.begin():
            result = await audit(session)
        inventory_only = all(
            not rows for name, rows in result.violations.items() if not name.startswith("I2")
        )
        if result.ok or not inventory_only or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    report = {
        "ok": result.ok,
        "summary": result.summary(),
        "violations": {k: v for k, v in result.violations.items() if v},
    }
    if not result.ok:
        console.print("[bold red]AUDIT FAILED[/]: the database breaks SPEC invariants:")
        for name, rows in result.violations.items():
            for row in rows[:50]:
                console.print(f"  {name}: {row}", highlight=False)
    return report


# ---------------------------------------------------------------------------------------------
# metrics


def _metric_presence(text: str) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for label, name in REQUIRED_METRICS.items():
        samples = re.findall(rf"^{name}(?:_bucket|_count|_sum)?(?:{{[^}}]*}})? ", text, flags=re.MULTILINE)
        names[label] = {
            "metric": name,
            "present": f"# TYPE {name}" in text or bool(samples),
            "samples": len(samples),
        }
    routes = sorted(
        set(re.findall(r'boxoffice_http_request_duration_seconds_count\{[^}]*route="([^"]+)"', text))
    )
    return {"names": names, "latency_routes": routes}


async def _scrape_metrics(pools: list[HttpPool]) -> str | None:
    """Every API process's /metrics, one after the other (None when one does not answer)."""
    texts = []
    for pool in pools:
        try:
            response = await pool.request("GET", "/metrics")
        except Exception:
            return None
        if response.status != 200:
            return None
        texts.append(response.body.decode(errors="replace"))
    return "\n".join(texts)


# ---------------------------------------------------------------------------------------------
# ratios and targets


def _ratio(
    measured: float | None, ceiling_name: str, ceiling: float | None, peak: float | None = None
) -> dict[str, Any]:
    return {
        "measured": measured,
        "ceiling": ceiling_name,
        "ceiling_per_second": ceiling,
        "ratio": round(measured / ceiling, 4) if measured is not None and ceiling else None,
        # The busiest second: the flow is demand-bound most of the time, its peak is not.
        "peak_per_second": peak,
        "peak_ratio": round(peak / ceiling, 4) if peak is not None and ceiling else None,
    }


def _ratios(steps: dict[str, Any], ceil: dict[str, Any] | None) -> dict[str, Any]:
    if not ceil:
        return {}
    # the faster /healthz window (before or after the timed phase: _healthz_after)
    http = (
        max((ceil.get(k) or {}).get("per_second") or 0.0 for k in ("http_trivial", "http_trivial_after"))
        or None
    )
    pg = (ceil.get("postgres_hold_update") or {}).get("per_second")
    lua = ((ceil.get("redis_hold_lua") or {}).get("single") or {}).get("per_second")
    pairs = {
        "join": ("http GET /healthz", http),
        "status": ("http GET /healthz", http),
        "token": ("http GET /healthz", http),
        "seat_map": ("http GET /healthz", http),
        "hold_won": ("postgres hold update", pg),
        "hold_refused": ("redis hold lua (single)", lua),
        "pay": ("postgres hold update", pg),
    }
    out: dict[str, Any] = {}
    for step, (name, value) in pairs.items():
        if step in steps:
            out[step] = _ratio(
                steps[step]["requests_per_second"],
                name,
                value,
                float(steps[step]["peak_requests_per_second"]),
            )
            # 429s (shed) count as requests above; this is the busiest second of real answers
            ok_peak = float(steps[step].get("peak_succeeded_per_second") or 0)
            out[step]["peak_succeeded_ratio"] = round(ok_peak / value, 4) if value else None
    return out


def _rate_target(
    steps: dict[str, Any], step: str, label: str, rate: float, p99_ms: float = 100.0
) -> dict[str, Any]:
    s = steps.get(step)
    if not s or not s["requests"]:
        return {
            "name": label,
            "goal": f">= {rate:,.0f}/s at p99 < {p99_ms:.0f} ms",
            "measured": "no requests",
            "met": None,
        }
    rps = s["requests_per_second"] or 0.0
    p99 = s["latency_ms"]["p99"] or 0.0
    return {
        "name": label,
        "goal": f">= {rate:,.0f}/s at p99 < {p99_ms:.0f} ms",
        "measured": f"{rps:,.0f}/s (peak {s['peak_requests_per_second']:,}/s), p99 {p99:.1f} ms",
        "met": rps >= rate and p99 < p99_ms,
    }


# ---------------------------------------------------------------------------------------------
# commands


def ceilings_command(settings: Settings, opts: StackOptions, console: Console) -> dict[str, Any]:
    report_dir = _report_dir(opts, "ceilings")
    with _stack(settings, opts, report_dir / "logs") as stack:

        async def main() -> dict[str, Any]:
            report = _base_report("ceilings", settings, stack, opts, {"seconds": opts.ceiling_seconds})
            report["ceilings"] = await ceilings.measure(
                database_url=stack.database_url,
                redis_url=stack.redis_url,
                base_url=stack.base_url,
                seconds=opts.ceiling_seconds,
            )
            return report

        report: dict[str, Any] = _run(main())
    print_ceilings(report["ceilings"], console)
    write_json(report, report_dir / "report.json")
    write_html(report, report_dir / "report.html")
    console.print(f"report: {report_dir / 'report.json'}  {report_dir / 'report.html'}")
    report["report_dir"] = str(report_dir)
    return report


def seat_map_command(
    settings: Settings, opts: StackOptions, seats: int, seconds: float, console: Console
) -> dict[str, Any]:
    from boxoffice.bench import seat_map

    report_dir = _report_dir(opts, "seat-map")
    started = time.perf_counter()
    with _stack(settings, opts, report_dir / "logs") as stack:
        with console.status(f"a {seats:,}-seat show in Chromium..."):
            result: dict[str, Any] = _run(
                seat_map.measure(
                    stack.settings, stack.base_url, stack.database_url, stack.redis_url, seats, seconds
                )
            )
    seat_map.print_seat_map(result, console)
    path = seat_map.report(result, report_dir, started)
    console.print(f"report: {path}")
    result["report_dir"] = str(report_dir)
    return result


def _command(
    name: str,
    settings: Settings,
    opts: StackOptions,
    connections: int,
    console: Console,
    body: Callable[[Stack, Path], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """A bench command on its stack: the report folder, `body(stack, report_dir)`, the report."""
    report_dir = _report_dir(opts, name)
    _raise_fd_limit(connections * 2 + 1024)
    started = time.perf_counter()
    with _stack(settings, opts, report_dir / "logs") as stack:
        report: dict[str, Any] = _run(body(stack, report_dir))
    report["duration_seconds"] = round(time.perf_counter() - started, 1)
    return _finish(report, report_dir, console)


def flash_sale_command(
    settings: Settings, opts: StackOptions, sale: FlashSaleOptions, console: Console
) -> dict[str, Any]:
    return _command(
        "flash-sale",
        settings,
        opts,
        sale.concurrency,
        console,
        lambda stack, report_dir: _flash_sale(settings, stack, opts, sale, report_dir, console),
    )


def burst_command(
    settings: Settings, opts: StackOptions, burst: BurstOptions, console: Console
) -> dict[str, Any]:
    return _command(
        "burst",
        settings,
        opts,
        burst.attempts,
        console,
        lambda stack, _: _burst(settings, stack, opts, burst, console),
    )


def cost_command(
    settings: Settings, opts: StackOptions, options: CostOptions, console: Console
) -> dict[str, Any]:
    """CPU per request of one API process, by kind (see bench/cost.py); then the audit."""

    async def body(stack: Stack, report_dir: Path) -> dict[str, Any]:
        report = _base_report("cost", settings, stack, opts, asdict(options))
        async with open_runtime(stack.settings, stack.database_url, stack.redis_url) as runtime:
            report["cost"] = await cost.measure(runtime, stack, options, report_dir, console)
            report["audit"] = await _audit(runtime, console)
        cost.print_cost(report["cost"], console)
        return report

    return _command("cost", settings, opts, options.concurrency, console, body)


def door_command(
    settings: Settings, opts: StackOptions, options: DoorOptions, console: Console
) -> dict[str, Any]:
    """`bench door`: gates scanning a sold-out show's tickets in parallel (bench/door.py)."""

    async def body(stack: Stack, report_dir: Path) -> dict[str, Any]:
        report = _base_report("door", settings, stack, opts, asdict(options))
        async with open_runtime(stack.settings, stack.database_url, stack.redis_url) as runtime:
            result = await door.run_door(runtime, stack, options, console)
            report["audit"] = await _audit(runtime, console)
        report["steps"] = result.pop("steps")
        report["door"] = result
        scan = report["steps"]["scan"]
        rate, p99 = scan["requests_per_second"] or 0, scan["latency_ms"]["p99"]
        report["targets"] = [
            {
                "name": "door: scans per second",
                "goal": ">= 1,000",
                "measured": f"{rate:,.0f}",
                "met": rate >= 1000,
            },
            {
                "name": "door: p99 per scan",
                "goal": "< 50 ms",
                "measured": f"{p99} ms",
                "met": p99 is not None and p99 < 50,
            },
            {
                "name": "door: nobody in twice, no void ticket in, every valid ticket in once",
                "goal": "0 each",
                "measured": ", ".join(f"{k} {v}" for k, v in result["door_audit"].items()),
                "met": result["door_ok"],
            },
            {
                "name": "audit",
                "goal": "0 violations",
                "measured": report["audit"]["summary"],
                "met": report["audit"]["ok"],
            },
        ]
        report["notes"] = [
            f"{result['scans']:,} scans of {result['tickets']:,} tickets ({result['void_tickets']} void); "
            f"answers {result['answers']}",
            "the set-up (selling every seat through the API, refunds) is not timed",
        ]
        if not result["door_ok"]:
            report["audit"]["ok"] = False
            report["audit"]["summary"] += "; the door audit failed"
        return report

    return _command("door", settings, opts, options.gates * options.per_gate, console, body)


def _finish(report: dict[str, Any], report_dir: Path, console: Console) -> dict[str, Any]:
    write_json(report, report_dir / "report.json")
    write_html(report, report_dir / "report.html")
    print_report(report, console)
    console.print(f"report: {report_dir / 'report.json'}  {report_dir / 'report.html'}")
    report["report_dir"] = str(report_dir)
    if not report["audit"]["ok"]:
        raise AuditFailed(report_dir / "report.json")
    return report


async def _ceilings_for(stack: Stack, opts: StackOptions, console: Console) -> dict[str, Any] | None:
    if opts.skip_ceilings:
        return None
    with console.status("measuring ceilings (Redis Lua, PostgreSQL hold UPDATE, HTTP /healthz)..."):
        return await ceilings.measure(
            database_url=stack.database_url,
            redis_url=stack.redis_url,
            base_url=stack.base_url,
            seconds=opts.ceiling_seconds,
        )


async def _healthz_after(
    ceil: dict[str, Any] | None, stack: Stack, opts: StackOptions, console: Console
) -> None:
    """`/healthz` again once the timed phase is over. The host's speed drifts within a run (three
    saturated sales in one hour: the window before measured 6,731-8,988/s while the polls' peak
    moved 5 %); the ratios take the faster of the two windows, so a slow one never flatters them."""
    if not ceil or not ceil.get("http_trivial") or not stack.base_url:
        return
    with console.status("measuring the /healthz ceiling again..."):
        ceil["http_trivial_after"] = await ceilings.http_trivial(stack.base_url, opts.ceiling_seconds)


@dataclass
class _Crowd:
    """What the timed phase of a flash sale measured (the client's side)."""

    timed: Timed
    state: flash_sale.SaleState
    fans: list[flash_sale.Fan]
    seconds: float
    cpu: dict[str, Any]
    memory: MemoryMeter
    frames: list[int]
    mid_scrape: dict[str, Any]
    final_metrics: str | None
    extras: fair.Extras | None = None  # --bots / --waitlist
    client_lag: dict[str, Any] | None = None  # LoopLateness of the load client's event loop


async def _flash_sale(
    settings: Settings,
    stack: Stack,
    opts: StackOptions,
    sale: FlashSaleOptions,
    report_dir: Path,
    console: Console,
) -> dict[str, Any]:
    """Set up a show and its fans, run the crowd at t=0, then audit and report: one step each."""
    admit = sale.admit_per_second or float(max(500, sale.users // 2))
    report = _base_report("flash-sale", settings, stack, opts, {**asdict(sale), "admit_per_second": admit})
    notes: list[str] = [
        "status polls honour the server's poll_after_seconds, capped at "
        f"{sale.poll_cap_seconds} s for the bench",
        "all fans arrive at t=0; --concurrency bounds requests in flight (the client's connections)",
        "latency is measured from when a request leaves the client (time queued inside the client excluded)",
    ]
    async with open_runtime(stack.settings, stack.database_url, stack.redis_url) as runtime:
        report["ceilings"] = await _ceilings_for(stack, opts, console)
        show, fans_data = await _prepare_sale(runtime, sale, admit, console)
        crowd = await _run_crowd(runtime, stack, sale, show, fans_data, notes, console)
        await _healthz_after(report.get("ceilings"), stack, opts, console)
        audit_report = await _audit(runtime, console)
        async with runtime.sessions() as session, session.begin():
            counts = await repository.seat_counts(session, show.show_id)
            reservations = await repository.reservation_counts(session, show.show_id)
            top = await repository.top_statements(session)
        admitted_order = await flash_sale.admission_order(runtime.redis, show.show_id)
        sections = await fair.sections(runtime, show.show_id, crowd.extras, admitted_order)
    report.update(_sale_report(report, sale, crowd, counts, reservations, admitted_order))
    report.update(sections)
    report.update({"audit": audit_report, "postgres_top_statements": top, "notes": notes})
    report["metrics_scrape"] = _metrics_report(crowd.mid_scrape, crowd.final_metrics, report_dir)
    seconds = int(crowd.seconds) + 1
    report["timeline"] = {
        "steps": {name: crowd.timed.steps[name].timeline(seconds) for name in report["steps"]},
        "queue": crowd.state.samples,
    }
    if sale.trace_sample:
        report["trace_breakdown"] = crowd.timed.traces.summary()
        notes.append(
            f"--trace-sample {sale.trace_sample}: that share of holds and payments carried a sampled "
            "traceparent; the server's Server-Timing split its handler's wall-clock (kit/trace.py)"
        )
    report["targets"] = _sale_targets(report)
    if "bots" in report:
        report["targets"] += bots.targets(report["bots"])
    if "waitlist" in report:
        report["targets"] += waitlist.targets(report["waitlist"])
    return report


async def _prepare_sale(
    runtime: Runtime, sale: FlashSaleOptions, admit: float, console: Console
) -> tuple[Any, Any]:
    """The show (its queue admitting `admit` fans a second) and the fans, logged in, with money."""
    with console.status(f"setting up {sale.users:,} fans and a show of {sale.seats:,} seats..."):
        show = await setup.create_show(
            runtime,
            seats=sale.seats,
            hold_seconds=sale.hold_seconds,
            admit_per_second=admit,
            max_active=None,
            oversubscription=1.5,
            token_ttl_seconds=max(30, sale.hold_seconds + 45),
            pow_difficulty=bots.TOLL_DIFFICULTY if sale.bots else 0,
        )
        fans_data = await setup.create_fans(runtime, sale.users, balance=show.price * show.max_seats * 2)
    async with runtime.sessions() as session, session.begin():
        await repository.reset_pg_stat_statements(session)
    return show, fans_data


async def _run_crowd(
    runtime: Runtime,
    stack: Stack,
    sale: FlashSaleOptions,
    show: Any,
    fans_data: Any,
    notes: list[str],
    console: Console,
) -> _Crowd:
    """The timed phase: every fan at t=0 (plus dashboard viewers and a metrics scraper), with a
    progress display, bounded by --max-seconds."""
    pool = HttpPool(stack.base_url, size=sale.concurrency)
    await _login_sample(pool, fans_data, notes)
    extras = await fair.prepare(runtime, sale.bots, sale.waitlist_fans if sale.waitlist else 0, show)
    heap.settle()  # the load client's own full collections would be counted as the server's latency
    t0 = time.perf_counter()
    traced: dict[str, Any] = {"trace_sample": sale.trace_sample, "trace_steps": ("hold", "pay")}
    extras.clients(pool, t0, traced)
    timed = extras.fans_timed or Timed(pool, t0, **traced)
    state = flash_sale.SaleState(seats_total=sale.seats, t0=t0)
    plan = flash_sale.FanPlan(
        pay_ratio=sale.pay_ratio,
        poll_cap_seconds=sale.poll_cap_seconds,
        max_seats=show.max_seats,
        hopeful_seconds=sale.hold_seconds + 15.0,
    )
    fans = [
        flash_sale.Fan(i, uid, tok)
        for i, (uid, tok) in enumerate(zip(fans_data.user_ids, fans_data.tokens, strict=True))
    ]
    rng = random.Random(sale.seed)
    meter = CpuMeter(stack.cpu_groups)
    memory = MemoryMeter(stack.api_pids)
    metrics_pools = [HttpPool(url, size=1) for url in stack.metrics_urls or [stack.base_url]]
    mid_scrape: dict[str, Any] = {}

    async def scraper() -> None:
        every = 0.5  # first scrape early: a tiny sale may sell out within seconds
        while not state.stop.is_set():
            await flash_sale.sleep_or_stop(state, every)
            every = 1.5
            if state.stop.is_set():
                break
            text = await _scrape_metrics(metrics_pools)
            if text is not None:
                mid_scrape.update({"t": round(time.perf_counter() - t0, 2), "text": text})

    viewers = []
    if sale.dashboards:
        admin_token = await setup.admin_token(runtime, fans_data.user_ids[-1])
        viewers = [
            asyncio.create_task(flash_sale.watch_dashboard(stack.base_url, show.show_id, admin_token, state))
            for _ in range(sale.dashboards)
        ]
        notes.append(f"{sale.dashboards} admin dashboard streams open during the sale")
    meter.start()
    lateness = LoopLateness()
    lateness.start()
    sampler = asyncio.create_task(flash_sale.sample_progress(state))
    scrape_task = asyncio.create_task(scraper())
    tasks = [
        asyncio.create_task(
            flash_sale.run_fan(
                f,
                timed=timed,
                state=state,
                plan=plan,
                concert_id=show.concert_id,
                show_id=show.show_id,
                rng=random.Random(rng.random()),
            )
        )
        for f in fans
    ]
    extras.start(sale, show, fans, tasks, state, rng)
    tasks += extras.tasks
    all_done = asyncio.gather(*tasks, return_exceptions=True)
    await _show_progress(sale, state, tasks, all_done, memory, notes, t0, console)
    results = await all_done
    timed_seconds = time.perf_counter() - t0
    state.stop.set()
    state.abort.set()
    cpu = meter.stop()
    client_lag = await lateness.stop()
    memory.sample()
    await sampler
    await scrape_task
    frames = [r for r in await asyncio.gather(*viewers, return_exceptions=True) if isinstance(r, int)]
    crashed = [r for r in results if isinstance(r, BaseException)]
    if crashed:
        notes.append(f"{len(crashed)} fan tasks crashed: {crashed[0]!r}")
    final_metrics = await _scrape_metrics(metrics_pools)
    await pool.close()
    for metrics_pool in metrics_pools:
        await metrics_pool.close()
    return _Crowd(
        timed, state, fans, timed_seconds, cpu, memory, frames, mid_scrape, final_metrics, extras, client_lag
    )


async def _show_progress(
    sale: FlashSaleOptions,
    state: flash_sale.SaleState,
    tasks: list[asyncio.Task[Any]],
    all_done: asyncio.Future[Any],
    memory: MemoryMeter,
    notes: list[str],
    t0: float,
    console: Console,
) -> None:
    """Joined / admitted / sold / done bars until every fan is done; stops the sale at --max-seconds."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        joined = progress.add_task("fans joined  ", total=sale.users)
        admitted = progress.add_task("fans admitted", total=sale.users)
        sold = progress.add_task("seats sold   ", total=sale.seats)
        finished = progress.add_task("fans done    ", total=len(tasks))
        while not all_done.done():
            elapsed = time.perf_counter() - t0
            if elapsed > sale.max_seconds and not state.abort.is_set():
                notes.append(f"stopped after --max-seconds {sale.max_seconds:.0f} s")
                state.stop.set()
                state.abort.set()
            memory.sample()
            progress.update(joined, completed=state.joined)
            progress.update(admitted, completed=state.admitted)
            progress.update(sold, completed=min(state.sold, sale.seats))
            progress.update(finished, completed=sum(t.done() for t in tasks))
            if sum(t.done() for t in tasks) == len(tasks):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(all_done), 0.25)
        progress.update(finished, completed=len(tasks))


def _sale_report(
    report: dict[str, Any],
    sale: FlashSaleOptions,
    crowd: _Crowd,
    counts: dict[str, int],
    reservations: Any,
    admitted_order: list[int],
) -> dict[str, Any]:
    """The report's sections from what the crowd measured and what the database holds."""
    timed, state, frames = crowd.timed, crowd.state, crowd.frames
    steps = {
        name: timed.steps[name].summary()
        for name in (*flash_sale.STEPS, "hold_won", "hold_refused")
        if name in timed.steps
    }
    outcomes: dict[str, int] = {}
    for f in crowd.fans:
        outcomes[f.outcome] = outcomes.get(f.outcome, 0) + 1
    sold_seats = counts.get("RESERVED", 0)
    return {
        "steps": steps,
        "sale": {
            "seats_total": sale.seats,
            "sold": sold_seats,
            "held": counts.get("TEMP_RESERVED", 0),
            "available": counts.get("AVAILABLE", 0),
            "sold_out": sold_seats == sale.seats,
            "time_to_sell_out_seconds": None if state.sold_out_at is None else round(state.sold_out_at, 2),
            "timed_phase_seconds": round(crowd.seconds, 2),
            "reservations": reservations,
            "fans": dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
            "client_view": {"sold": state.sold, "holds_won": state.holds_won, "admitted": state.admitted},
            # How long waiting fans kept polling once the client saw the last seat sold: they
            # stop only when the server says SOLD_OUT (or its ticket is served).
            "fans_told_sold_out": state.told_sold_out,
            "queue_drained_after_sold_out_seconds": None
            if state.sold_out_at is None
            else round(max(0.0, state.last_left_queue - state.sold_out_at), 2),
        },
        "api_memory": crowd.memory.report(),
        "fairness": flash_sale.fairness(crowd.fans, admitted_order),
        "dashboards": {
            "streams": sale.dashboards,
            "streams_ok": len(frames),
            "frames_received": sum(frames),
            "frames_per_stream_per_second": round(sum(frames) / len(frames) / crowd.seconds, 2)
            if frames
            else None,
        },
        "cpu": crowd.cpu,
        "client_loop_lateness": crowd.client_lag,
        "ratios": _ratios(steps, report.get("ceilings")),
    }


def _metrics_report(mid: dict[str, Any], final: str | None, report_dir: Path) -> dict[str, Any]:
    text = mid.get("text") or final or ""
    if mid.get("text"):
        (report_dir / "metrics-midrun.txt").write_text(mid["text"])
    if final:
        (report_dir / "metrics-final.txt").write_text(final)
    presence = _metric_presence(text)
    presence["scraped_at_seconds"] = mid.get("t")
    presence["mid_run"] = bool(mid.get("text"))
    presence["note"] = "each API process has its own registry: a scrape shows the process that answered it"
    return presence


async def _login_sample(pool: HttpPool, fans: setup.Fans, notes: list[str], sample: int = 3) -> None:
    """A few real logins (argon2 verify) so the login path is exercised; the rest use minted tokens."""
    ok = 0
    for i in range(1, min(sample, len(fans.user_ids)) + 1):
        with contextlib.suppress(Exception):
            response = await pool.request(
                "POST",
                "/api/auth/login",
                json={"email": f"{fans.emails_prefix}{i}@bench.invalid", "password": setup.BENCH_PASSWORD},
            )
            ok += response.status == 200
    notes.append(
        "access tokens minted directly for every fan; "
        f"{ok}/{min(sample, len(fans.user_ids))} sample logins succeeded"
    )


def _sale_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    steps = report["steps"]
    sale = report["sale"]
    tau = report["fairness"]["kendall_tau"]
    return [
        _rate_target(steps, "hold_won", "holds that win", 2000),
        _rate_target(steps, "hold_refused", "holds refused under contention", 8000, p99_ms=float("inf")),
        _rate_target(steps, "join", "queue joins", 5000),
        _rate_target(steps, "status", "status polls", 10000),
        _rate_target(steps, "pay", "balance payments", 1000),
        {
            "name": "flash sale sells out",
            "goal": f"{sale['seats_total']:,} seats sold",
            "measured": f"{sale['sold']:,} sold, {sale['held']} held, {sale['available']} available",
            "met": sale["sold_out"],
        },
        {
            "name": "audit",
            "goal": "0 violations",
            "measured": report["audit"]["summary"],
            "met": report["audit"]["ok"],
        },
        {
            "name": "fairness",
            "goal": "Kendall tau >= 0.95",
            "measured": "-" if tau is None else f"{tau:.4f}",
            "met": None if tau is None else tau >= 0.95,
        },
    ]


async def _burst_once(
    runtime: Runtime, stack: Stack, burst: BurstOptions, fans: setup.Fans, via: str
) -> dict[str, Any]:
    """One burst on a fresh show (untimed setup), over HTTP or gRPC, with the database's count."""
    show = await setup.create_show(
        runtime,
        seats=burst.seats,
        hold_seconds=300,
        admit_per_second=0,
        max_active=None,
        oversubscription=None,
        max_seats=max(1, min(10, burst.seats_per_attempt)),
    )
    qtokens = setup.queue_tokens(runtime, fans.user_ids, show.show_id)
    pool = HttpPool(stack.base_url, size=burst.attempts if via == "http" else 1, timeout=60)
    first = {"Authorization": f"Bearer {fans.tokens[0]}", "X-Queue-Token": qtokens[0]}
    seat_map = await pool.request("GET", f"/api/shows/{show.show_id}/seats", headers=first)
    seat_ids = sorted(int(s["id"]) for s in flash_sale.seat_list(seat_map))
    if len(seat_ids) != burst.seats:
        raise RuntimeError(
            f"seat map returned {len(seat_ids)} seats (status {seat_map.status}), expected {burst.seats}"
        )
    attempts = []
    for i, (tok, qtok) in enumerate(zip(fans.tokens, qtokens, strict=True)):
        start = i % len(seat_ids)
        chosen = [seat_ids[(start + j) % len(seat_ids)] for j in range(max(1, burst.seats_per_attempt))]
        attempts.append(Attempt(i, chosen, {"Authorization": f"Bearer {tok}", "X-Queue-Token": qtok}))
    meter = CpuMeter(stack.cpu_groups)
    meter.start()
    try:
        if via == "grpc":
            assert stack.grpc_target is not None
            result = await run_grpc_burst(stack.grpc_target, show.show_id, attempts)
        else:
            result = await run_burst(pool, show.show_id, attempts, trace_sample=burst.trace_sample)
    finally:
        cpu = meter.stop()
        await pool.close()
    async with runtime.sessions() as session, session.begin():
        result["database_seats"] = await repository.seat_counts(session, show.show_id)
    result["via"] = via
    result["cpu"] = cpu
    return result


def _burst_targets(result: dict[str, Any], burst: BurstOptions) -> list[dict[str, Any]]:
    single = burst.seats_per_attempt == 1
    door = "" if burst.via == "http" else f" ({result['via']})"
    return [
        {
            "name": f"burst{door}: one winner per seat",
            "goal": "exactly 1 winner per seat" if single else "at most 1 winner per seat",
            "measured": (
                f"max {result['winners_per_seat_max']} winners on a seat; "
                f"{result['winners']} winners for {result['seats']} seats"
            ),
            "met": result["winners_per_seat_max"] == 1
            and (not single or result["winners"] == result["seats"]),
        },
        {
            "name": f"burst{door}: all answered fast",
            "goal": "all answered < 500 ms",
            "measured": f"{result['time_to_last_answer_ms']:.0f} ms to the last answer",
            "met": result["time_to_last_answer_ms"] < 500,
        },
    ]


async def _burst(
    settings: Settings, stack: Stack, opts: StackOptions, burst: BurstOptions, console: Console
) -> dict[str, Any]:
    report = _base_report("burst", settings, stack, opts, asdict(burst))
    notes = ["admission tokens are minted directly: the burst measures the hold, not the queue"]
    doors = ["http", "grpc"] if burst.via == "both" else [burst.via]
    if "grpc" in doors and stack.grpc_target is None:
        raise RuntimeError("--via grpc needs the gRPC server: --grpc-target host:port with --target")
    results: dict[str, dict[str, Any]] = {}
    async with open_runtime(stack.settings, stack.database_url, stack.redis_url) as runtime:
        report["ceilings"] = await _ceilings_for(stack, opts, console)
        with console.status(f"setting up {burst.attempts:,} fans..."):
            fans = await setup.create_fans(runtime, burst.attempts, balance=0)
        for via in doors:
            with console.status(
                f"{burst.attempts:,} attempts over {via} released at once on {burst.seats} seats..."
            ):
                results[via] = await _burst_once(runtime, stack, burst, fans, via)
        report["audit"] = await _audit(runtime, console)
    main = results[doors[0]]
    report["cpu"] = main.pop("cpu")
    report["burst"] = main
    if "grpc" in results and len(doors) == 2:
        report["burst_grpc"] = results["grpc"]
        report["cpu_grpc"] = results["grpc"].pop("cpu")
    report["targets"] = [t for r in results.values() for t in _burst_targets(r, burst)]
    report["targets"].append(
        {
            "name": "audit",
            "goal": "0 violations",
            "measured": report["audit"]["summary"],
            "met": report["audit"]["ok"],
        }
    )
    ceil = report.get("ceilings") or {}
    pg = (ceil.get("postgres_hold_update") or {}).get("per_second")
    ratios: dict[str, Any] = {}
    for via, result in results.items():
        if pg:
            name = "burst answers" if via == doors[0] else f"burst answers ({via})"
            ratios[name] = _ratio(result["answered_per_second"], "postgres hold update", pg)
    if len(results) == 2:
        http_rate, grpc_rate = results["http"]["answered_per_second"], results["grpc"]["answered_per_second"]
        ratios["grpc vs http holds"] = _ratio(grpc_rate, "http burst answers", http_rate)
    report["ratios"] = ratios
    report["notes"] = notes
    if any(r["winners_per_seat_max"] > 1 for r in results.values()):
        report["audit"]["ok"] = False
        report["audit"]["summary"] += "; a seat has more than one winner"
    return report


__all__ = [
    "AuditFailed",
    "BurstOptions",
    "FlashSaleOptions",
    "StackOptions",
    "burst_command",
    "ceilings_command",
    "cost_command",
    "door_command",
    "flash_sale_command",
]
