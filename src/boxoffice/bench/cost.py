"""`boxoffice bench cost`: CPU microseconds of one API process per request, by kind of request.

On a shared 2-core box wall-clock rates say more about the neighbours than about the code; the CPU
time a request costs the API process survives the noise. Each round runs, on a fresh show with one
seat per fan, `requests` of each kind at `concurrency` in flight:
- healthz       GET /healthz (the floor of the HTTP stack: the other kinds are shown as ratios to it)
- seat_status   GET /api/shows/{id}/seats/status as fan i (the seat map's statuses, 200)
- seat_status_304  the same with If-None-Match: the current ETag (304)
- seat_map      GET /api/shows/{id}/seats as fan i (the whole map, the compatible read, 200)
- hold_won      POST /api/reservations, fan i takes seat i (201)
- hold_refused  POST /api/reservations, fan i asks for seat i+1, held by fan i+1 (409 from the shield)
- pay_balance   POST /api/payments from the balance for fan i's hold (201)
- join          POST /api/queue, fan i joins a show whose toll is off (200)
- queue_status  GET /api/queue/status with the X-Queue-Ticket of that join: a waiting fan's poll,
                answered from the show's serving board (200), the crowd's request in a sale
- join_tolled   POST /api/queue with a valid solution in X-Altcha (200): the same join plus the
                toll's check (one HMAC, one SHA-256, one SET NX). Challenges are issued and solved
                before the timed part (the client's work is not the server's cost); the derived row
                toll_check is join_tolled - join. Goal: join_tolled <= 1.5x /healthz.
and reads the server processes' CPU (psutil, children included) around each kind. The figure per
kind is the median over the rounds. With `profile`, one more round (of at least 1,000 requests of
each kind, for enough samples) runs each kind under py-spy
(sampling the API process; idle samples, i.e. the event loop's wait, are left out) and reports the
share of samples in which each library has a frame. Samples are taken only while the API's thread
holds the GIL (`--gil`): a thread waiting in epoll, or a Cython coroutine's stale frame while it
waits, would otherwise be counted as work.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import statistics
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from boxoffice.bench import flash_sale, setup
from boxoffice.bench.client import CpuMeter, HttpPool, Response
from boxoffice.bench.report import _fmt as fmt
from boxoffice.bench.stack import Stack
from boxoffice.runtime import Runtime

# In a buyer's order: the seat map is read before the hold (so, as in a sale, a hold finds the
# fan's tokens already verified by this process); then the joins (plain and with the toll).
KINDS = (
    "healthz",
    "seat_status",
    "seat_status_304",
    "seat_map",
    "hold_won",
    "hold_refused",
    "pay_balance",
    "join",
    "queue_status",
    "join_tolled",
)
EXPECTED = {
    "healthz": 200,
    "seat_status": 200,
    "seat_status_304": 304,
    "seat_map": 200,
    "hold_won": 201,
    "hold_refused": 409,
    "pay_balance": 201,
    "join": 200,
    "queue_status": 200,
    "join_tolled": 200,
}
# The base difficulty of the join_tolled show (ALTCHA maxnumber): solved untimed, by the bench.
JOIN_TOLL_DIFFICULTY = 2000
# Inclusive shares: samples with a frame here (py-spy names a frame `func (package/file.py:line)`).
# The outer layers (uvicorn, starlette, fastapi's app) are in every sample, so only what a request
# may or may not pay for is listed.
INCLUSIVE = {
    "sqlalchemy": "(sqlalchemy/",
    "asyncpg": "(asyncpg/",
    "fastapi dependency solving": "(fastapi/dependencies/",
    "pydantic": "(pydantic",
    "redis-py": "(redis/",
    "redis_mux": "(boxoffice/redis/mux.py",
    "idempotency.py": "(boxoffice/db/idempotency.py",
    "jwt": "(jwt/",
    "json": "(json/",
    "prometheus_client": "(prometheus_client/",
}
# Self shares: each sample goes to the innermost frame of one of these packages (stdlib frames
# count for the package that called them; C code for the Python frame that called it).
PACKAGES = (
    "sqlalchemy", "asyncpg", "fastapi", "starlette", "pydantic", "redis", "uvicorn", "httptools",
    "prometheus_client", "jwt", "structlog", "msgspec", "uvloop", "boxoffice",
)  # fmt: skip


@dataclass(frozen=True)
class CostOptions:
    requests: int = 3000
    concurrency: int = 50
    rounds: int = 3
    profile: bool = True
    profile_rate: int = 250  # py-spy samples per second
    # The profiled round's requests of each kind, at least: py-spy samples the API only while it
    # holds the GIL, and 100 requests of a 100 us kind is 10 ms of CPU: 2-3 samples, or none.
    profile_min_requests: int = 1000


@dataclass
class _Round:
    show_id: int
    seat_ids: list[int]
    tokens: list[str]
    queue_tokens: list[str]
    reservations: list[int | None]
    status_etag: str = ""
    joins: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (concert, show)
    solutions: list[str] = field(default_factory=list)  # fan i's X-Altcha for join_tolled
    tickets: dict[int, str] = field(default_factory=dict)  # fan i's queue_ticket from the plain join


async def _prepare(runtime: Runtime, stack: Stack, count: int) -> _Round:
    """A show with one seat per fan, fans with the balance for one seat (untimed)."""
    show = await setup.create_show(
        runtime,
        seats=count,
        hold_seconds=3600,
        admit_per_second=0,
        max_active=None,
        oversubscription=None,
        max_seats=1,
    )
    fans = await setup.create_fans(runtime, count, balance=show.price)
    qtokens = setup.queue_tokens(runtime, fans.user_ids, show.show_id)
    pool = HttpPool(stack.base_url, size=1)
    try:
        first = {"Authorization": f"Bearer {fans.tokens[0]}", "X-Queue-Token": qtokens[0]}
        seat_map = await pool.request("GET", f"/api/shows/{show.show_id}/seats", headers=first)
        status = await pool.request("GET", f"/api/shows/{show.show_id}/seats/status", headers=first)
    finally:
        await pool.close()
    seat_ids = sorted(int(s["id"]) for s in flash_sale.seat_list(seat_map))
    if len(seat_ids) != count:
        raise RuntimeError(f"seat map returned {len(seat_ids)} seats (status {seat_map.status}), not {count}")
    etag = status.headers.get("etag", "")
    r = _Round(show.show_id, seat_ids, fans.tokens, qtokens, [None] * count, etag)
    await _prepare_joins(runtime, r, fans.user_ids)
    return r


async def _prepare_joins(runtime: Runtime, r: _Round, user_ids: list[int]) -> None:
    """Two small shows to join (nobody is admitted): one without the toll, one with it, and each
    fan's solution for the latter, issued as the server issues them (its key, its format) and
    solved here, untimed."""
    from boxoffice.config import secret
    from boxoffice.waiting_room import toll

    for kind, difficulty in (("join", 0), ("join_tolled", JOIN_TOLL_DIFFICULTY)):
        show = await setup.create_show(
            runtime,
            seats=20,
            hold_seconds=3600,
            admit_per_second=0,
            max_active=None,
            oversubscription=None,
            pow_difficulty=difficulty,
        )
        r.joins[kind] = (show.concert_id, show.show_id)
    key = toll.toll_key(secret(runtime.settings.queue_token_secret))
    now_s = int(runtime.clock.now().timestamp())
    show_id = r.joins["join_tolled"][1]
    for user_id in user_ids:
        challenge = toll.issue(
            key, user_id=user_id, show_id=show_id, maxnumber=JOIN_TOLL_DIFFICULTY, now_s=now_s
        )
        number = toll.solve(challenge)
        if number is None:
            raise RuntimeError("a challenge the bench issued has no solution")
        r.solutions.append(toll.payload(challenge, number))


def _request(kind: str, r: _Round, i: int) -> tuple[str, str, Any, dict[str, str]]:
    """(method, path, json body, headers) of request i of a kind."""
    if kind == "healthz":
        return "GET", "/healthz", None, {}
    if kind.startswith("seat_"):
        gate = {"Authorization": f"Bearer {r.tokens[i]}", "X-Queue-Token": r.queue_tokens[i]}
        if kind == "seat_map":
            return "GET", f"/api/shows/{r.show_id}/seats", None, gate
        if kind == "seat_status_304":
            gate["If-None-Match"] = r.status_etag
        return "GET", f"/api/shows/{r.show_id}/seats/status", None, gate
    auth = {"Authorization": f"Bearer {r.tokens[i]}", "Idempotency-Key": uuid.uuid4().hex}
    if kind == "pay_balance":
        return "POST", "/api/payments", {"reservation_id": r.reservations[i], "method": "BALANCE"}, auth
    if kind == "queue_status":
        concert_id, show_id = r.joins["join"]
        headers = {"Authorization": auth["Authorization"], "X-Queue-Ticket": r.tickets.get(i, "")}
        return "GET", f"/api/queue/status?concert_id={concert_id}&show_id={show_id}", None, headers
    if kind in r.joins:
        concert_id, show_id = r.joins[kind]
        headers = {"Authorization": auth["Authorization"]}
        if kind == "join_tolled":
            headers["X-Altcha"] = r.solutions[i]
        return "POST", "/api/queue", {"concert_id": concert_id, "show_id": show_id}, headers
    seat = r.seat_ids[i] if kind == "hold_won" else r.seat_ids[(i + 1) % len(r.seat_ids)]
    body = {"show_id": r.show_id, "seat_ids": [seat]}
    return "POST", "/api/reservations", body, {**auth, "X-Queue-Token": r.queue_tokens[i]}


async def _fire(pool: HttpPool, kind: str, r: _Round, concurrency: int) -> Counter[str]:
    """Every request of a kind, `concurrency` at a time; the statuses seen."""
    statuses: Counter[str] = Counter()
    todo = iter(range(len(r.seat_ids)))

    async def worker() -> None:
        for i in todo:
            method, path, body, headers = _request(kind, r, i)
            response: Response = await pool.request(method, path, json=body, headers=headers)
            while (kind in r.joins or kind == "queue_status") and response.status == 429:  # shed: come back
                statuses["shed, retried"] += 1
                await asyncio.sleep(flash_sale.retry_after(response))
                response = await pool.request(method, path, json=body, headers=headers)
            statuses[f"{response.status} {response.problem_code()}".strip()] += 1
            if kind == "hold_won" and response.status == 201:
                r.reservations[i] = int(response.json()["reservation_id"])
            if kind == "join" and response.status == 200:
                r.tickets[i] = str(response.json()["queue_ticket"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def _per_request(cpu: dict[str, Any], requests: int) -> dict[str, float]:
    """µs of CPU per request of each server process group, and of the API's in the kernel."""
    server = cpu.get("server") or {}
    out = {name: round(v["cpu_seconds"] / requests * 1e6, 1) for name, v in server.items()}
    if "api" in server:
        out["api_system"] = round(server["api"]["system_seconds"] / requests * 1e6, 1)
    return out


class _Profiler:
    """py-spy recording the API process while one kind runs (raw collapsed stacks)."""

    def __init__(self, pid: int, out: Path, rate: int) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out = out
        command = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
        self.proc = subprocess.Popen(
            [*command, "--gil", "--nonblocking", "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def __aenter__(self) -> _Profiler:
        await asyncio.sleep(1.0)  # py-spy attaches
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"py-spy could not attach: {err.strip()[-300:]}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _package(frame: str) -> str | None:
    location = frame.rpartition(" (")[2]
    top = location.split("/", 1)[0] if "/" in location else ""
    if top not in PACKAGES or location.startswith("boxoffice/cli.py"):  # cli.py: the process entry
        return None
    return top


def profile_shares(raw: str) -> dict[str, Any]:
    """From py-spy's raw output (`frame;frame;... count` lines): the share of samples with a frame
    in each of INCLUSIVE (they overlap) and each package's self share (they add up to 1)."""
    total = 0
    inclusive: Counter[str] = Counter()
    owner: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for name, marker in INCLUSIVE.items():
            if marker in stack:
                inclusive[name] += count
        frames = stack.split(";")
        found = next((p for p in map(_package, reversed(frames)) if p is not None), None)
        owner[found or "(event loop, stdlib)"] += count
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "share_with_frame_in": {k: round(v / total, 3) for k, v in inclusive.most_common()},
        "self_share_by_package": {k: round(v / total, 3) for k, v in owner.most_common()},
    }


async def measure(
    runtime: Runtime, stack: Stack, options: CostOptions, report_dir: Path, console: Console
) -> dict[str, Any]:
    api = stack.cpu_groups.get("api")
    if not api:
        raise RuntimeError("bench cost measures the API process it starts; it cannot use --target")
    pool = HttpPool(stack.base_url, size=options.concurrency, timeout=60)
    rounds: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    try:
        await pool.warm(options.concurrency)
        total = options.rounds + (1 if options.profile else 0)
        for n in range(total):
            profiling = n == options.rounds
            count = max(options.requests, options.profile_min_requests) if profiling else options.requests
            with console.status(f"round {n + 1}/{total}: setting up {count:,} fans and seats..."):
                r = await _prepare(runtime, stack, count)
            result: dict[str, Any] = {}
            for kind in KINDS:
                label = "profiling" if profiling else "measuring"
                with console.status(f"round {n + 1}/{total}: {label} {kind} x {count:,}..."):
                    meter = CpuMeter(stack.cpu_groups)
                    out = report_dir / f"profile-{kind}.txt"
                    cm: Any = _Profiler(api[0], out, options.profile_rate) if profiling else _null()
                    async with cm:
                        meter.start()
                        statuses = await _fire(pool, kind, r, options.concurrency)
                        cpu = meter.stop()
                    _check(kind, statuses)
                    if profiling:
                        profiles[kind] = profile_shares(out.read_text() if out.exists() else "")
                    else:
                        result[kind] = {
                            "us_per_request": _per_request(cpu, options.requests),
                            "requests_per_second_wall": round(options.requests / cpu["wall_seconds"], 1),
                            "statuses": dict(statuses),
                        }
            if not profiling:
                rounds.append(result)
    finally:
        await pool.close()
    return {"rounds": rounds, "summary": summarize(rounds), "profiles": profiles or None}


@contextlib.asynccontextmanager
async def _null() -> Any:
    yield None


def _check(kind: str, statuses: Counter[str]) -> None:
    want = EXPECTED[kind]
    wrong = {k: v for k, v in statuses.items() if not k.startswith(str(want)) and k != "shed, retried"}
    if wrong:
        raise RuntimeError(f"{kind}: expected every answer to be {want}, got {dict(statuses)}")


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind and process group: the median µs per request over the rounds, its range, and the
    API's median as a ratio to /healthz's."""
    out: dict[str, Any] = {}
    for kind in [k for k in KINDS if rounds and k in rounds[0]]:  # (a report may predate a kind)
        groups = rounds[0][kind]["us_per_request"].keys()
        out[kind] = {
            g: {
                "median": statistics.median(r[kind]["us_per_request"][g] for r in rounds),
                "min": min(r[kind]["us_per_request"][g] for r in rounds),
                "max": max(r[kind]["us_per_request"][g] for r in rounds),
            }
            for g in groups
        }
    floor = out.get("healthz", {}).get("api", {}).get("median")
    join, tolled = out.get("join", {}).get("api"), out.get("join_tolled", {}).get("api")
    if join and tolled:
        # The toll's own check: a tolled join less a plain one (per round, then the median).
        diffs = [
            r["join_tolled"]["us_per_request"]["api"] - r["join"]["us_per_request"]["api"] for r in rounds
        ]
        out["toll_check"] = {
            "api": {"median": round(statistics.median(diffs), 1), "min": min(diffs), "max": max(diffs)}
        }
    for kind in out:
        api = out[kind].get("api")
        if api and floor:
            api["vs_healthz"] = round(api["median"] / floor, 2)
    return out


def print_cost(cost: dict[str, Any], console: Console) -> None:
    table = Table(title="CPU µs per request (median of rounds; range)", title_justify="left")
    columns = ("request", "API µs", "range", "vs /healthz", "of it kernel", "PostgreSQL µs", "Redis µs")
    for column in (*columns, "worker µs"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for kind, groups in cost["summary"].items():
        api = groups.get("api", {})
        table.add_row(
            kind,
            fmt(api.get("median"), 0),
            f"{fmt(api.get('min'), 0)}-{fmt(api.get('max'), 0)}",
            fmt(api.get("vs_healthz"), 2),
            fmt(groups.get("api_system", {}).get("median"), 0),
            *(fmt(groups.get(g, {}).get("median"), 0) for g in ("postgres", "redis", "worker")),
        )
    console.print(table)
    for kind, prof in (cost.get("profiles") or {}).items():
        shares = prof.get("share_with_frame_in") or {}
        own = prof.get("self_share_by_package") or {}
        text = ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if v >= 0.02)
        text_self = ", ".join(f"{k} {v:.0%}" for k, v in own.items() if v >= 0.02)
        console.print(f"profile {kind} ({prof.get('samples', 0)} samples): {text}", highlight=False)
        console.print(f"  self time by package: {text_self}", highlight=False)
