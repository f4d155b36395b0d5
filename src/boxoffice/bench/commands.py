"""`boxoffice bench ...`: CLI wiring only (options -> runner)."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console

from boxoffice.config import Settings, with_secrets

bench_app = typer.Typer(
    help="Flash-sale simulator, burst test, raw ceilings (oversell audit after each), seat map in a browser.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, width=130)

TargetOpt = Annotated[
    str | None,
    typer.Option(
        help="Base URL of a running deployment (its BOXOFFICE_DATABASE_URL/REDIS_URL/secrets must be set)"
    ),
]
WorkersOpt = Annotated[
    int, typer.Option("--api-workers", min=1, max=64, help="API processes to start (no --target)")
]
ReportDirOpt = Annotated[Path, typer.Option(help="Where report.json / report.html go (a timestamped folder)")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(help="Data dir for the embedded backends (default: a temporary one, removed after)"),
]
CeilingOpt = Annotated[float, typer.Option(min=0.2, max=60, help="Seconds per ceiling measurement")]
LogLevelOpt = Annotated[str, typer.Option(help="Log level of the API/worker processes started here")]
TraceSampleOpt = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Trace this share of the holds and payments (a burst: of its HTTP attempts): the report "
        "splits their wall-clock into waiting before the handler, CPU, PostgreSQL, Redis and other "
        "tasks, and lists the slowest (with --target, the servers need BOXOFFICE_TRACE_BREAKDOWN=true)",
    ),
]


def _fail(message: str) -> NoReturn:
    console.print(f"[bold red]boxoffice bench: error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # stop everything started here, the same way Ctrl-C does


def _settings(target: str | None) -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"invalid setting BOXOFFICE_{'_'.join(map(str, first['loc'])).upper()}: {first['msg']}")
    if target:
        return with_secrets(settings)
    # A stack started here gets fresh secrets: the bench mints tokens with them, the servers verify.
    return settings.model_copy(
        update={
            "jwt_secret": settings.jwt_secret or SecretStr(uuid.uuid4().hex * 2),
            "queue_token_secret": settings.queue_token_secret or SecretStr(uuid.uuid4().hex * 2),
        }
    )


def _guard(run: object) -> None:
    from boxoffice.bench.runner import AuditFailed
    from boxoffice.ops.backends.process import BackendError

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        run()  # type: ignore[operator]
    except AuditFailed as exc:
        console.print(f"[bold red]audit failed[/]: see {exc.report_path}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopped; everything started by the bench was shut down")
        raise typer.Exit(130) from None
    except (BackendError, RuntimeError, OSError) as exc:
        _fail(str(exc))


@bench_app.command("flash-sale")
def flash_sale(
    users: Annotated[int, typer.Option(min=1, max=200_000, help="Fans")] = 1000,
    fans: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=200_000,
            help="The crowd scale: this many fans who mostly wait and poll at the server's pace "
            "(poll_after_seconds uncapped); replaces --users and --poll-cap",
        ),
    ] = None,
    seats: Annotated[int, typer.Option(min=1, max=100_000, help="Seats of the show")] = 200,
    concurrency: Annotated[
        int, typer.Option(min=1, max=10_000, help="Requests in flight (client connections)")
    ] = 200,
    pay_ratio: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of holds that pay; the rest walk away")
    ] = 0.9,
    api_workers: WorkersOpt = 2,
    target: TargetOpt = None,
    report_dir: ReportDirOpt = Path("bench-reports"),
    hold_seconds: Annotated[int, typer.Option(min=5, max=3600, help="Hold lifetime of the bench show")] = 15,
    admit_per_second: Annotated[
        float | None,
        typer.Option(min=1, max=100_000, help="Queue admission rate (default max(500, users/2))"),
    ] = None,
    poll_cap: Annotated[
        float, typer.Option(min=0.05, max=60, help="Cap on poll_after_seconds, seconds")
    ] = 1.0,
    max_seconds: Annotated[
        float, typer.Option(min=5, max=3600, help="Stop the sale after this long")
    ] = 150.0,
    ceiling_seconds: CeilingOpt = 2.0,
    no_ceilings: Annotated[bool, typer.Option("--no-ceilings", help="Skip the ceiling measurements")] = False,
    data_dir: DataDirOpt = None,
    server_log_level: LogLevelOpt = "WARNING",
    seed: Annotated[int, typer.Option(help="Random seed of the fans' choices")] = 1,
    dashboards: Annotated[
        int, typer.Option(min=0, max=1000, help="Admin dashboard streams kept open during the sale")
    ] = 0,
    layout: Annotated[
        str,
        typer.Option(
            help="shared: --api-workers processes serve every route; tiers: one process for the waiting"
            " room, one for the buyers' routes, the shipped nginx gateway in front (needs nginx)"
        ),
    ] = "shared",
    queue_nice: Annotated[
        int,
        typer.Option(min=0, max=19, help="tiers: run the waiting room's process at this niceness (0-19)"),
    ] = 0,
    bots: Annotated[
        int,
        typer.Option(
            min=0,
            max=100_000,
            help="Bots at the queue's door (the show's toll is then on): a third skip the challenge, a third"
            " replay solutions fans spent, the rest farm many accounts paying the toll; the report shows"
            " their share of admissions",
        ),
    ] = 0,
    waitlist: Annotated[
        bool,
        typer.Option(
            "--waitlist",
            help="Fans who join the waitlist once the show sells out; the report audits the offers of"
            " returned seats (waitlist order, made/taken/lapsed)",
        ),
    ] = False,
    waitlist_fans: Annotated[
        int, typer.Option(min=1, max=100_000, help="With --waitlist: how many fans join it")
    ] = 20,
    trace_sample: TraceSampleOpt = 0.0,
) -> None:
    """N fans, C requests in flight: queue -> token -> seats -> hold -> pay or walk away; then audit."""
    if layout not in ("shared", "tiers"):
        _fail(f"--layout must be shared or tiers, not {layout!r}")
    if queue_nice and layout != "tiers":
        _fail("--queue-nice needs --layout tiers (the waiting room in its own process)")
    from boxoffice.bench.runner import FlashSaleOptions, StackOptions, flash_sale_command

    settings = _settings(target)
    stack = StackOptions(
        api_workers=api_workers,
        target=target,
        data_dir=data_dir,
        report_dir=report_dir,
        server_log_level=server_log_level,
        ceiling_seconds=ceiling_seconds,
        skip_ceilings=no_ceilings,
        layout=layout,
        queue_nice=queue_nice,
        trace_breakdown=trace_sample > 0,
    )
    if fans is not None:
        users, poll_cap = fans, 60.0
    sale = FlashSaleOptions(
        users=users,
        seats=seats,
        concurrency=concurrency,
        pay_ratio=pay_ratio,
        hold_seconds=hold_seconds,
        admit_per_second=admit_per_second,
        poll_cap_seconds=poll_cap,
        max_seconds=max_seconds,
        seed=seed,
        dashboards=dashboards,
        bots=bots,
        waitlist=waitlist,
        waitlist_fans=waitlist_fans,
        trace_sample=trace_sample,
    )
    _guard(lambda: flash_sale_command(settings, stack, sale, console))


@bench_app.command("burst")
def burst(
    attempts: Annotated[int, typer.Option(min=1, max=20_000, help="Simultaneous hold attempts")] = 1000,
    seats: Annotated[int, typer.Option(min=1, max=10_000, help="Seats they fight over")] = 10,
    seats_per_attempt: Annotated[
        int, typer.Option(min=1, max=10, help="Seats asked for by each attempt")
    ] = 1,
    api_workers: WorkersOpt = 2,
    target: TargetOpt = None,
    report_dir: ReportDirOpt = Path("bench-reports"),
    ceiling_seconds: CeilingOpt = 2.0,
    no_ceilings: Annotated[bool, typer.Option("--no-ceilings", help="Skip the ceiling measurements")] = False,
    data_dir: DataDirOpt = None,
    server_log_level: LogLevelOpt = "WARNING",
    via: Annotated[
        str, typer.Option(help="Front door: http, grpc, or both (the same burst over each, in one run)")
    ] = "http",
    grpc_target: Annotated[
        str | None, typer.Option(help="host:port of the deployment's gRPC TicketService (with --target)")
    ] = None,
    trace_sample: TraceSampleOpt = 0.0,
) -> None:
    """Every attempt released at once from a barrier against the same seats: one winner per seat."""
    from boxoffice.bench.runner import BurstOptions, StackOptions, burst_command

    settings = _settings(target)
    stack = StackOptions(
        api_workers=api_workers,
        target=target,
        data_dir=data_dir,
        report_dir=report_dir,
        server_log_level=server_log_level,
        ceiling_seconds=ceiling_seconds,
        skip_ceilings=no_ceilings,
        grpc=via != "http",
        grpc_target=grpc_target,
        trace_breakdown=trace_sample > 0,
    )
    if via not in ("http", "grpc", "both"):
        _fail(f"--via must be http, grpc or both, not {via!r}")
    options = BurstOptions(
        attempts=attempts,
        seats=seats,
        seats_per_attempt=seats_per_attempt,
        via=via,
        trace_sample=trace_sample,
    )
    _guard(lambda: burst_command(settings, stack, options, console))


@bench_app.command("door")
def door(
    tickets: Annotated[
        int, typer.Option(min=4, max=200_000, help="Tickets (seats sold through the API)")
    ] = 20_000,
    gates: Annotated[int, typer.Option(min=1, max=256, help="Gates scanning in parallel")] = 8,
    lanes: Annotated[int, typer.Option(min=1, max=64, help="Scans in flight per gate")] = 4,
    duplicates: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of tickets scanned again at another gate")
    ] = 0.1,
    void: Annotated[float, typer.Option(min=0.0, max=0.5, help="Share of orders refunded first")] = 0.01,
    api_workers: WorkersOpt = 2,
    target: TargetOpt = None,
    report_dir: ReportDirOpt = Path("bench-reports"),
    data_dir: DataDirOpt = None,
    server_log_level: LogLevelOpt = "WARNING",
) -> None:
    """N gates scanning every ticket of a sold-out show: scans/s and p99 per scan, and the audit
    (nobody entered twice, no void ticket entered)."""
    from boxoffice.bench.door import DoorOptions
    from boxoffice.bench.runner import StackOptions, door_command

    settings = _settings(target)
    stack = StackOptions(
        api_workers=api_workers,
        target=target,
        data_dir=data_dir,
        report_dir=report_dir,
        server_log_level=server_log_level,
        skip_ceilings=True,
    )
    options = DoorOptions(
        tickets=tickets, gates=gates, per_gate=lanes, duplicate_share=duplicates, void_share=void
    )
    _guard(lambda: door_command(settings, stack, options, console))


@bench_app.command("cost")
def cost(
    requests: Annotated[
        int, typer.Option(min=100, max=50_000, help="Requests of each kind per round")
    ] = 3000,
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="Requests in flight")] = 50,
    rounds: Annotated[int, typer.Option(min=1, max=10, help="Rounds (the figure is their median)")] = 3,
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Skip the extra round under py-spy")
    ] = False,
    report_dir: ReportDirOpt = Path("bench-reports"),
    data_dir: DataDirOpt = None,
    server_log_level: LogLevelOpt = "WARNING",
) -> None:
    """CPU µs of one API process per request: /healthz, a winning hold, a refused hold, a balance
    payment (server CPU from psutil; the figure that survives a shared, noisy machine)."""
    from boxoffice.bench.cost import CostOptions
    from boxoffice.bench.runner import StackOptions, cost_command

    settings = _settings(None)
    stack = StackOptions(
        api_workers=1,
        data_dir=data_dir,
        report_dir=report_dir,
        server_log_level=server_log_level,
        skip_ceilings=True,
    )
    options = CostOptions(requests=requests, concurrency=concurrency, rounds=rounds, profile=not no_profile)
    _guard(lambda: cost_command(settings, stack, options, console))


@bench_app.command("ceilings")
def ceilings(
    seconds: CeilingOpt = 3.0,
    api_workers: WorkersOpt = 2,
    target: TargetOpt = None,
    report_dir: ReportDirOpt = Path("bench-reports"),
    data_dir: DataDirOpt = None,
    server_log_level: LogLevelOpt = "WARNING",
) -> None:
    """The raw rates of the building blocks on this machine (Redis hold Lua, PostgreSQL hold UPDATE, HTTP)."""
    from boxoffice.bench.runner import StackOptions, ceilings_command

    settings = _settings(target)
    stack = StackOptions(
        api_workers=api_workers,
        target=target,
        data_dir=data_dir,
        report_dir=report_dir,
        server_log_level=server_log_level,
        ceiling_seconds=seconds,
    )
    _guard(lambda: ceilings_command(settings, stack, console))


@bench_app.command("seat-map")
def seat_map(
    seats: Annotated[int, typer.Option(min=100, max=100_000, help="Seats of the show")] = 50_000,
    seconds: Annotated[float, typer.Option(min=0.5, max=60, help="Seconds per change rate")] = 2.0,
    api_workers: WorkersOpt = 1,
    target: TargetOpt = None,
    report_dir: ReportDirOpt = Path("bench-reports"),
    data_dir: DataDirOpt = None,
    server_log_level: LogLevelOpt = "WARNING",
) -> None:
    """The canvas seat map in Chromium: first full draw, and seat changes/s with no frame > 50 ms."""
    from boxoffice.bench.runner import StackOptions, seat_map_command

    settings = _settings(target)
    stack = StackOptions(
        api_workers=api_workers,
        target=target,
        data_dir=data_dir,
        report_dir=report_dir,
        server_log_level=server_log_level,
    )
    _guard(lambda: seat_map_command(settings, stack, seats, seconds, console))
