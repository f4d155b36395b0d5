"""The report: a Rich table on the terminal, a JSON file, and an HTML page with inline SVG charts
(no scripts, no CDN: it renders offline, in any browser, from the file alone)."""

from __future__ import annotations

import html
import itertools
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def machine() -> dict[str, Any]:
    import psutil

    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in list(errors.items())[:4]) or "-"


# ---------------------------------------------------------------------------------------------
# terminal


TRACE_COLUMNS = (
    ("before", "before handler"),
    ("cpu", "own CPU"),
    ("pg", "PostgreSQL"),
    ("redis", "Redis"),
    ("other", "other tasks"),
    ("after", "answer back"),
)


def trace_table(breakdown: dict[str, Any]) -> Table:
    """Where a traced buyer's wall-clock went (mean ms per request, share of the mean total)."""
    table = Table(
        title="trace breakdown: mean ms per request (share of its wall-clock)", title_justify="left"
    )
    columns = (
        "step",
        "traced",
        *(title for _, title in TRACE_COLUMNS),
        "total",
        "p99 total",
        "pg / redis calls",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "step" else "right")
    for step, entry in breakdown.items():
        means = entry["mean_ms"]
        total = means["total"] or 1e-9
        cells = [f"{means[key]:.2f} ({means[key] / total:.0%})" for key, _ in TRACE_COLUMNS]
        calls = entry.get("mean_calls") or {}
        table.add_row(
            step,
            _fmt(entry["samples"]),
            *cells,
            f"{means['total']:.2f}",
            _fmt(entry["p99_total_ms"], 2),
            f"{calls.get('pg', 0):.1f} / {calls.get('redis', 0):.1f}",
        )
    return table


def print_report(report: dict[str, Any], console: Console) -> None:
    steps: dict[str, Any] = report.get("steps") or {}
    if steps:
        table = Table(title=f"boxoffice bench {report['command']}: steps", title_justify="left")
        for column in ("step", "requests", "req/s", "peak/s", "p50 ms", "p95 ms", "p99 ms", "errors"):
            table.add_column(column, justify="left" if column in ("step", "errors") else "right")
        for name, s in steps.items():
            lat = s["latency_ms"]
            table.add_row(
                name,
                _fmt(s["requests"]),
                _fmt(s["requests_per_second"]),
                _fmt(s["peak_requests_per_second"]),
                _fmt(lat["p50"], 2),
                _fmt(lat["p95"], 2),
                _fmt(lat["p99"], 2),
                _errors(s["errors"]),
            )
        console.print(table)

    breakdown = report.get("trace_breakdown")
    if breakdown:
        console.print(trace_table(breakdown))

    sale = report.get("sale")
    if sale:
        table = Table(title="sale", title_justify="left", show_header=False)
        for key in ("seats_total", "sold", "held", "available", "sold_out", "time_to_sell_out_seconds"):
            table.add_row(key, _fmt(sale.get(key), 2))
        table.add_row("fans", ", ".join(f"{k} {v}" for k, v in sale.get("fans", {}).items()))
        fairness = report.get("fairness") or {}
        table.add_row(
            "kendall tau", f"{_fmt(fairness.get('kendall_tau'), 4)} ({fairness.get('fans_ranked', 0)} fans)"
        )
        console.print(table)

    for name in ("burst", "burst_grpc"):
        burst = report.get(name)
        if not burst:
            continue
        title = f"burst over {burst['via']}" if "via" in burst else "burst"
        table = Table(title=title, title_justify="left", show_header=False)
        for key in (
            "attempts",
            "seats",
            "winners",
            "winners_per_seat_max",
            "seats_with_one_winner",
            "release_spread_ms",
            "time_to_last_answer_ms",
            "answered_per_second",
            "loser_statuses",
        ):
            table.add_row(key, _fmt(burst.get(key), 2))
        console.print(table)
        if burst.get("trace_breakdown"):
            console.print(trace_table(burst["trace_breakdown"]))

    cpu = report.get("cpu")
    if cpu:
        table = Table(title="CPU (cores busy during the timed phase)", title_justify="left")
        table.add_column("process")
        table.add_column("cpu s", justify="right")
        table.add_column("cores", justify="right")
        table.add_row(
            "load client", _fmt(cpu["client"]["cpu_seconds"], 2), _fmt(cpu["client"]["cores_busy"], 2)
        )
        for name, value in (cpu.get("server") or {}).items():
            table.add_row(name, _fmt(value["cpu_seconds"], 2), _fmt(value["cores_busy"], 2))
        if cpu.get("server_total"):
            total = cpu["server_total"]
            table.add_row("server total", _fmt(total["cpu_seconds"], 2), _fmt(total["cores_busy"], 2))
        console.print(table)
    lateness = report.get("client_loop_lateness")
    if lateness and lateness.get("samples"):
        console.print(
            f"load client's event loop late by p50 {_fmt(lateness['p50_ms'], 1)} ms, "
            f"p99 {_fmt(lateness['p99_ms'], 1)} ms, max {_fmt(lateness['max_ms'], 1)} ms "
            "(a latency figure can hold up to that much of the client's own delay)"
        )

    ceilings = report.get("ceilings")
    if ceilings:
        print_ceilings(ceilings, console)
    ratios = report.get("ratios")
    if ratios:
        table = Table(title="rates next to their ceilings", title_justify="left")
        for column in ("rate", "mean/s", "peak 1 s", "ceiling", "ceiling/s", "ratio", "peak ratio"):
            table.add_column(column, justify="left" if column in ("rate", "ceiling") else "right")
        for name, r in ratios.items():
            table.add_row(
                name,
                _fmt(r["measured"]),
                _fmt(r.get("peak_per_second")),
                r["ceiling"],
                _fmt(r["ceiling_per_second"]),
                _fmt(r["ratio"], 3),
                _fmt(r.get("peak_ratio"), 3),
            )
        console.print(table)

    targets = report.get("targets")
    if targets:
        table = Table(title="targets (issue 7)", title_justify="left")
        for column in ("target", "goal", "measured", "met"):
            table.add_column(column)
        for t in targets:
            met = t["met"]
            table.add_row(
                t["name"],
                t["goal"],
                t["measured"],
                "[green]yes[/]" if met else ("[red]no[/]" if met is False else "-"),
            )
        console.print(table)

    metrics = report.get("metrics_scrape")
    if metrics:
        missing = [name for name, seen in metrics["names"].items() if not seen["present"]]
        console.print(
            f"/metrics mid-run: {len(metrics['names']) - len(missing)}/{len(metrics['names'])} "
            "required names present" + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    audit = report.get("audit")
    if audit:
        colour = "green" if audit["ok"] else "red"
        console.print(f"[bold {colour}]audit: {audit['summary']}[/]")
    for note in report.get("notes") or []:
        console.print(f"note: {note}", highlight=False)


def print_ceilings(ceilings: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"ceilings ({ceilings.get('seconds_each')} s each, measured from this process)",
        title_justify="left",
    )
    for column in ("building block", "per second", "p50 ms", "p99 ms", "client cores", "how"):
        table.add_column(column, justify="left" if column in ("building block", "how") else "right")
    redis = ceilings.get("redis_hold_lua") or {}
    for mode in ("single", "pipelined"):
        if mode in redis:
            r = redis[mode]
            how = f"{redis['script']}, {redis['seats_per_call']} seats, {redis['connections']} conns"
            if mode == "pipelined":
                how += f", depth {r.get('depth')}"
            table.add_row(
                f"redis hold lua ({mode})",
                _fmt(r["per_second"]),
                _fmt(r["latency_ms"]["p50"], 2),
                _fmt(r["latency_ms"]["p99"], 2),
                _fmt(r["client_cores_busy"], 2),
                how,
            )
    pg = ceilings.get("postgres_hold_update")
    if pg:
        table.add_row(
            "postgres hold update",
            _fmt(pg["per_second"]),
            _fmt(pg["latency_ms"]["p50"], 2),
            _fmt(pg["latency_ms"]["p99"], 2),
            _fmt(pg["client_cores_busy"], 2),
            f"{pg['seats_per_hold']} seats, {pg['connections']} conns, own tx",
        )
    for key, name in (
        ("http_trivial", "http GET /healthz"),
        ("http_trivial_after", "http GET /healthz, after"),
    ):
        http = ceilings.get(key)
        if not http:
            continue
        table.add_row(
            name,
            _fmt(http["per_second"]),
            _fmt(http["latency_ms"]["p50"], 2),
            _fmt(http["latency_ms"]["p99"], 2),
            _fmt(http["client_cores_busy"], 2),
            f"{http['connections']} keep-alive conns"
            + ("; the ratios use the faster window" if key.endswith("after") else ""),
        )
    console.print(table)


# ---------------------------------------------------------------------------------------------
# files


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))


def _svg_chart(title: str, series: dict[str, Sequence[tuple[float, float | None]]], y_label: str) -> str:
    """A line chart as inline SVG: one polyline per series, axes with a few ticks, a legend."""
    width, height, left, right, top, bottom = 860, 280, 64, 150, 30, 36
    points = [(x, y) for s in series.values() for x, y in s if y is not None]
    if not points:
        return f"<h3>{html.escape(title)}</h3><p>no data</p>"
    x_max = max(1.0, max(x for x, _ in points))
    y_max = max(1e-9, max(y for _, y in points)) * 1.08
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + plot_w * x / x_max

    def sy(y: float) -> float:
        return top + plot_h * (1 - y / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    for i in range(5):
        y = y_max * i / 4
        parts.append(
            f'<line x1="{left}" y1="{sy(y):.1f}" x2="{left + plot_w}" y2="{sy(y):.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" font-size="11" text-anchor="end">{y:,.0f}</text>'
            if y_max > 20
            else f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" font-size="11" text-anchor="end">{y:.2f}</text>'
        )
    for i in range(6):
        x = x_max * i / 5
        parts.append(
            f'<text x="{sx(x):.1f}" y="{top + plot_h + 16}" font-size="11" '
            f'text-anchor="middle">{x:.0f}s</text>'
        )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2}" font-size="11" transform="rotate(-90 14 {top + plot_h / 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>'
    )
    for index, (name, values) in enumerate(series.items()):
        colour = COLORS[index % len(COLORS)]
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        for px, py in values:
            if py is None:
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{sx(px):.1f},{sy(py):.1f}")
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
            elif seg:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{" ".join(seg)}"/>'
                )
        ly = top + 14 * index + 6
        parts.append(f'<rect x="{left + plot_w + 12}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 26}" y="{ly + 1}" font-size="11">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table_html(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c, 2))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(report: dict[str, Any], path: Path) -> None:
    timeline = report.get("timeline") or {}
    charts: list[str] = []
    per_step = timeline.get("steps") or {}
    if per_step:
        charts.append(
            _svg_chart(
                "Throughput over time (requests per second, by step)",
                {name: list(enumerate(t["rps"])) for name, t in per_step.items()},
                "req/s",
            )
        )
        charts.append(
            _svg_chart(
                "Latency over time (p99 per second, ms)",
                {name: list(enumerate(t["p99_ms"])) for name, t in per_step.items()},
                "ms",
            )
        )
        charts.append(
            _svg_chart(
                "Latency over time (p50 per second, ms)",
                {name: list(enumerate(t["p50_ms"])) for name, t in per_step.items()},
                "ms",
            )
        )
    samples = timeline.get("queue") or []
    if samples:
        charts.append(
            _svg_chart(
                "Queue: fans waiting, admitted, seats sold (client view)",
                {
                    "waiting": [(s["t"], s["waiting"]) for s in samples],
                    "admitted (total)": [(s["t"], s["admitted"]) for s in samples],
                    "seats sold": [(s["t"], s["sold"]) for s in samples],
                },
                "fans / seats",
            )
        )
        rate: list[tuple[float, float | None]] = []
        for prev, cur in itertools.pairwise(samples):
            dt = cur["t"] - prev["t"]
            rate.append((cur["t"], (cur["admitted"] - prev["admitted"]) / dt if dt > 0 else None))
        charts.append(
            _svg_chart(
                "Admission rate (fans admitted per second, client view)", {"admitted/s": rate}, "fans/s"
            )
        )

    sections: list[str] = []
    steps = report.get("steps") or {}
    if steps:
        sections.append("<h2>Steps</h2>")
        sections.append(
            _table_html(
                [
                    [
                        n,
                        s["requests"],
                        s["requests_per_second"],
                        s["peak_requests_per_second"],
                        s["latency_ms"]["p50"],
                        s["latency_ms"]["p95"],
                        s["latency_ms"]["p99"],
                        _errors(s["errors"]),
                    ]
                    for n, s in steps.items()
                ],
                ["step", "requests", "req/s", "peak/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
            )
        )
    if report.get("targets"):
        sections.append("<h2>Targets</h2>")
        sections.append(
            _table_html(
                [
                    [t["name"], t["goal"], t["measured"], {True: "yes", False: "NO", None: "-"}[t["met"]]]
                    for t in report["targets"]
                ],
                ["target", "goal", "measured", "met"],
            )
        )
    if report.get("ratios"):
        sections.append("<h2>Rates next to their ceilings</h2>")
        sections.append(
            _table_html(
                [
                    [
                        n,
                        r["measured"],
                        r.get("peak_per_second"),
                        r["ceiling"],
                        r["ceiling_per_second"],
                        r["ratio"],
                        r.get("peak_ratio"),
                    ]
                    for n, r in report["ratios"].items()
                ],
                ["rate", "mean/s", "peak 1 s", "ceiling", "ceiling/s", "ratio", "peak ratio"],
            )
        )
    audit = report.get("audit") or {}
    css = (
        "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;margin:8px 0 20px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}"
        "pre{background:#f6f6f6;padding:10px;font-size:12px;overflow:auto}.ok{color:#080}.bad{color:#b00}"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>boxoffice bench {html.escape(report['command'])}</title>"
        f"<style>{css}</style></head><body>"
        f"<h1>boxoffice bench {html.escape(report['command'])}</h1>"
        f"<p>{html.escape(str(report.get('started_at')))} on "
        f"{html.escape(json.dumps(report.get('machine')))}</p>"
        f"<p class='{'ok' if audit.get('ok') else 'bad'}'>audit: {html.escape(str(audit.get('summary')))}</p>"
        + "".join(f"<div>{c}</div>" for c in charts)
        + "".join(sections)
        + "<h2>Full report</h2><pre>"
        + html.escape(json.dumps({k: v for k, v in report.items() if k != "timeline"}, indent=2, default=str))
        + "</pre></body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
