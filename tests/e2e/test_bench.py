"""`boxoffice bench` end to end, at tiny sizes: each command runs as the operator would run it (a
subprocess that starts its own embedded PostgreSQL + Redis, API processes and a worker), then the
report is checked field by field and the audit must pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from boxoffice.bench.flash_sale import kendall_tau
from boxoffice.bench.runner import REQUIRED_METRICS

pytestmark = [pytest.mark.slow, pytest.mark.own_backends]

STEP_FIELDS = {"requests", "requests_per_second", "peak_requests_per_second", "latency_ms", "errors"}


def _bench(
    tmp_path: Path, *args: str, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    report_root = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env["COLUMNS"] = "160"
    proc = subprocess.run(
        [sys.executable, "-m", "boxoffice.cli", "bench", *args, "--report-dir", str(report_root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )
    dirs = sorted(report_root.glob("*/report.json"))
    assert dirs, f"no report written (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    report = json.loads(dirs[-1].read_text())
    return proc, report, dirs[-1].parent


def _check_ceilings(ceilings: dict[str, Any]) -> None:
    redis = ceilings["redis_hold_lua"]
    assert redis["single"]["per_second"] > 0
    assert redis["pipelined"]["per_second"] > 0
    assert ceilings["postgres_hold_update"]["per_second"] > 0
    assert ceilings["http_trivial"]["per_second"] > 0
    for block in (
        redis["single"],
        redis["pipelined"],
        ceilings["postgres_hold_update"],
        ceilings["http_trivial"],
    ):
        assert {"p50", "p99"} <= set(block["latency_ms"])


def test_flash_sale_tiny(tmp_path: Path) -> None:
    proc, report, folder = _bench(
        tmp_path,
        "flash-sale",
        "--users",
        "50",
        "--seats",
        "20",
        "--concurrency",
        "20",
        "--api-workers",
        "1",
        "--hold-seconds",
        "5",
        "--ceiling-seconds",
        "0.3",
        "--max-seconds",
        "45",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    assert report["audit"]["ok"] is True, report["audit"]
    for step in ("join", "status", "token", "seat_map", "hold", "pay"):
        assert step in report["steps"], f"step {step} missing"
        assert STEP_FIELDS <= set(report["steps"][step])
        assert {"p50", "p95", "p99"} <= set(report["steps"][step]["latency_ms"])
        assert report["steps"][step]["requests"] > 0
    assert report["steps"]["hold_won"]["requests"] > 0

    sale = report["sale"]
    assert sale["sold"] + sale["held"] + sale["available"] == 20
    assert {"sold_out", "time_to_sell_out_seconds", "fans"} <= set(sale)
    assert sale["sold"] > 0
    assert sale["fans"].get("bought", 0) > 0

    fairness = report["fairness"]
    assert fairness["fans_ranked"] > 0 and fairness["kendall_tau"] is not None
    assert -1.0 <= fairness["kendall_tau"] <= 1.0

    cpu = report["cpu"]
    assert cpu["client"]["cpu_seconds"] >= 0
    # the load client's own event-loop lateness, sampled every 10 ms through the timed phase
    lateness = report["client_loop_lateness"]
    assert lateness["samples"] >= 10 and 0 <= lateness["p50_ms"] <= lateness["p99_ms"] <= lateness["max_ms"]
    # per-process API memory (the serve process's worker), and how the queue ended for the crowd
    memory = report["api_memory"]
    assert memory["processes"] == 1 and 20 < memory["max_peak_rss_mb"] < 2000
    assert {"fans_told_sold_out", "queue_drained_after_sold_out_seconds"} <= set(sale)
    assert {"api", "worker", "postgres", "redis"} <= set(cpu["server"])

    _check_ceilings(report["ceilings"])
    # /healthz measured again after the timed phase; the crowd's ratios use the faster window
    windows = [report["ceilings"][k]["per_second"] for k in ("http_trivial", "http_trivial_after")]
    assert min(windows) > 0
    assert report["ratios"]["status"]["ceiling_per_second"] == max(windows)
    assert {"join", "hold_won", "pay"} <= set(report["ratios"])
    assert all(r["ratio"] is not None for r in report["ratios"].values())
    assert {t["name"] for t in report["targets"]} >= {"holds that win", "queue joins", "audit", "fairness"}
    assert report["timeline"]["steps"]["join"]["rps"]
    assert report["timeline"]["queue"]

    # /metrics was scraped while the sale ran, and shows what operations needs.
    scrape = report["metrics_scrape"]
    assert scrape["mid_run"] is True
    midrun = (folder / "metrics-midrun.txt").read_text()
    for name in REQUIRED_METRICS.values():
        assert name in midrun, f"{name} missing from /metrics during the run"
    assert "/api/queue" in scrape["latency_routes"]

    page = (folder / "report.html").read_text()
    assert "<svg" in page and "<script" not in page and "http://cdn" not in page


def test_flash_sale_tiers_behind_the_gateway(tmp_path: Path) -> None:
    """--layout tiers: the waiting room and the buyers' routes in two processes behind the shipped
    nginx gateway; the sale goes through nginx and each tier's CPU and memory are reported."""
    proc, report, folder = _bench(
        tmp_path,
        "flash-sale",
        "--users",
        "50",
        "--seats",
        "20",
        "--concurrency",
        "20",
        "--layout",
        "tiers",
        "--hold-seconds",
        "5",
        "--no-ceilings",
        "--max-seconds",
        "45",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert report["stack"]["layout"] == "tiers"
    assert report["audit"]["ok"] is True, report["audit"]
    assert report["sale"]["sold"] > 0 and report["steps"]["hold_won"]["requests"] > 0
    assert {"api-queue", "api-buyers", "nginx", "worker"} <= set(report["cpu"]["server"])
    assert report["cpu"]["server"]["api-queue"]["cpu_seconds"] > 0
    assert report["cpu"]["server"]["api-buyers"]["cpu_seconds"] > 0
    assert report["api_memory"]["processes"] == 2
    # /metrics is asked of each tier directly: the holds live in one, the queue in the other
    midrun = (folder / "metrics-midrun.txt").read_text()
    for name in REQUIRED_METRICS.values():
        assert name in midrun, f"{name} missing from the tiers' /metrics during the run"


def test_flash_sale_with_bots_and_a_waitlist_tiny(tmp_path: Path) -> None:
    """--bots: the toll is on; bots that skip or replay the challenge get no place, no token, no
    admission, no seat (each refusal with its stable code); the farm's accounts pay per place.
    --waitlist: fans join once the show sells out; the returned seats are offered to them in
    waitlist order (audited from the database) and never to the crowd while they wait."""
    proc, report, _ = _bench(
        tmp_path,
        "flash-sale",
        "--users", "50", "--seats", "20", "--concurrency", "20", "--api-workers", "1",
        "--hold-seconds", "5", "--no-ceilings", "--max-seconds", "60", "--pay-ratio", "0.5",
        "--bots", "9", "--waitlist", "--waitlist-fans", "8",
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert report["audit"]["ok"] is True, report["audit"]
    bots = report["bots"]["kinds"]
    assert {"fans", "skip", "replay", "farm"} == set(bots)
    assert bots["fans"]["challenges_solved"] == bots["fans"]["joins_accepted"] == 50
    assert bots["fans"]["admitted"] > 0 and bots["fans"]["unpaid_joins_accepted"] == 0
    for kind in ("skip", "replay"):
        k = bots[kind]
        assert k["joins_sent"] > 0 and k["challenges_solved"] == 0
        got = (k["joins_accepted"], k["admission_tokens_got"], k["admitted"], k["seats_bought"])
        assert got == (0, 0, 0, 0), k
    assert "428 QUEUE_CHALLENGE_REQUIRED" in bots["skip"]["refused"]
    assert "400 QUEUE_CHALLENGE_INVALID" in bots["skip"]["refused"]
    assert "403 QUEUE_CHALLENGE_MISMATCH" in bots["replay"]["refused"]
    farm = bots["farm"]
    assert farm["joins_accepted"] == farm["challenges_solved"] == farm["accounts"] == 3
    assert farm["refused"] == {"409 QUEUE_CHALLENGE_REPLAYED": 3}  # the double dip, refused
    assert farm["admitted"] <= farm["work_share"] * report["bots"]["total_admitted"] * 1.2 + 2
    names = {t["name"]: t["met"] for t in report["targets"]}
    assert names["bots that skip the toll: places, tokens, admissions, seats"] is True
    assert names["bots that replay solutions: places, tokens, admissions, seats"] is True

    wl = report["waitlist"]
    db = wl["database"]
    assert wl["fans"] == 8 and wl["joined"] > 0
    assert db["entries"] == wl["joined"]
    # How many seats come back after the waitlist forms depends on the crowd's timing; what came
    # back was offered in order (tests/integration/test_waitlist_audit.py plants each case).
    assert db["offers_made"] == db["offered_now"] + db["taken"] + db["lapsed"], wl
    assert db["inversions"] == 0, db["inversion_sample"]
    assert db["crowd_holds_while_waiting"] == 0
    assert wl["outcomes"].get("took_offer", 0) == db["taken"]
    assert names["waitlist: offers follow waitlist order"] is True


def test_flash_sale_rejects_an_unknown_layout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "boxoffice.cli", "bench", "flash-sale", "--layout", "wide"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "--layout must be shared or tiers" in proc.stderr and "Traceback" not in proc.stderr


def test_burst_tiny(tmp_path: Path) -> None:
    proc, report, _ = _bench(
        tmp_path,
        "burst",
        "--attempts",
        "100",
        "--seats",
        "5",
        "--api-workers",
        "1",
        "--ceiling-seconds",
        "0.3",
        "--via",
        "both",
        "--trace-sample",
        "1",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Every HTTP attempt traced: the winners' and the losers' wall-clock split, as the sale's.
    traced = report["burst"]["trace_breakdown"]
    assert (traced["hold_won"]["samples"], traced["hold_refused"]["samples"]) == (5, 95)
    assert traced["hold_won"]["mean_calls"]["pg"] >= 1, traced["hold_won"]
    assert "trace_breakdown" not in report["burst_grpc"]  # the gRPC door answers no Server-Timing
    # The same burst over HTTP, then over gRPC on a fresh show, in one run.
    for burst, loser in ((report["burst"], "409 SEATS_TAKEN"), (report["burst_grpc"], "ABORTED SEATS_TAKEN")):
        assert burst["attempts"] == 100
        assert burst["winners"] == 5
        assert burst["winners_per_seat_max"] == 1
        assert set(burst["winners_per_seat"].values()) == {1}
        assert sum(burst["loser_statuses"].values()) == 95
        assert set(burst["loser_statuses"]) == {loser}, burst["loser_statuses"]
        assert burst["time_to_last_answer_ms"] > 0
        assert burst["database_seats"] == {"TEMP_RESERVED": 5}
    assert (report["burst"]["via"], report["burst_grpc"]["via"]) == ("http", "grpc")
    assert report["ratios"]["grpc vs http holds"]["ratio"] > 0
    assert report["audit"]["ok"] is True
    _check_ceilings(report["ceilings"])


def test_door_tiny(tmp_path: Path) -> None:
    """Tickets sold through the API, a refunded order, gates racing duplicate scans: every valid
    ticket in exactly once, no void ticket in, and the door's rate and p99 reported."""
    proc, report, _ = _bench(
        tmp_path,
        "door",
        "--tickets",
        "80",
        "--gates",
        "4",
        "--lanes",
        "2",
        "--duplicates",
        "0.5",
        "--void",
        "0.1",
        "--api-workers",
        "1",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    door = report["door"]
    assert door["tickets"] == 80 and door["void_tickets"] == 8  # 2 of 20 orders of 4 refunded
    assert door["scans"] == 80 + 40
    assert door["answers"]["VALID"] == 72 and door["answers"]["VOID"] >= 8
    assert door["answers"]["ALREADY_USED"] + door["answers"]["VOID"] == 48
    assert door["door_ok"] is True and set(door["door_audit"].values()) == {0}
    scan = report["steps"]["scan"]
    assert STEP_FIELDS <= set(scan) and scan["requests"] == 120 and scan["latency_ms"]["p99"] > 0
    assert [t["name"] for t in report["targets"]][:2] == ["door: scans per second", "door: p99 per scan"]
    assert report["audit"]["ok"] is True


def test_cost_tiny(tmp_path: Path) -> None:
    """CPU per request of each kind, every answer the expected one, and a py-spy profile of each."""
    # 500 of each: the CPU clock ticks every 10 ms, and 100 requests of /healthz are 9 ms of it.
    proc, report, folder = _bench(tmp_path, "cost", "--requests", "500", "--rounds", "1", timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    cost = report["cost"]
    expected = {
        "healthz": "200",
        "seat_status": "200",
        "seat_status_304": "304",
        "seat_map": "200",
        "hold_won": "201",
        "hold_refused": "409 SEATS_TAKEN",
        "pay_balance": "201",
        "join": "200",
        "queue_status": "200",  # each joined fan's poll with its queue ticket
        "join_tolled": "200",  # every join with a valid solution got its place
    }
    for kind, status in expected.items():
        statuses = dict(cost["rounds"][0][kind]["statuses"])
        statuses.pop("shed, retried", None)  # a join shed under load is sent again
        assert statuses == {status: 500}
        api = cost["summary"][kind]["api"]
        assert api["median"] > 0 and api["min"] <= api["median"] <= api["max"]
        assert 0 <= cost["summary"][kind]["api_system"]["median"] <= api["median"]
        assert cost["profiles"][kind]["samples"] > 0, cost["profiles"][kind]
        assert (folder / f"profile-{kind}.txt").stat().st_size > 0
    assert cost["summary"]["healthz"]["api"]["vs_healthz"] == 1.0
    assert cost["summary"]["pay_balance"]["api"]["vs_healthz"] > 1.0
    # the toll's own check: a tolled join less a plain one, as a multiple of /healthz
    assert "vs_healthz" in cost["summary"]["toll_check"]["api"]
    assert report["audit"]["ok"] is True
    assert "CPU µs per request" in proc.stderr


def test_ceilings_alone(tmp_path: Path) -> None:
    proc, report, _ = _bench(tmp_path, "ceilings", "--seconds", "0.3", "--api-workers", "1")
    assert proc.returncode == 0, proc.stderr[-4000:]
    _check_ceilings(report["ceilings"])
    assert "redis hold lua" in proc.stderr


def test_kendall_tau_matches_the_definition() -> None:
    import itertools
    import random

    rng = random.Random(3)
    for _ in range(50):
        n = rng.randint(2, 40)
        xs = [float(rng.randint(0, 6)) for _ in range(n)]
        ys = [float(rng.randint(0, 6)) for _ in range(n)]
        conc = disc = tx = ty = 0
        for i, j in itertools.combinations(range(n), 2):
            a = (xs[i] > xs[j]) - (xs[i] < xs[j])
            b = (ys[i] > ys[j]) - (ys[i] < ys[j])
            if a == 0 and b == 0:
                continue
            if a == 0:
                tx += 1
            elif b == 0:
                ty += 1
            elif a == b:
                conc += 1
            else:
                disc += 1
        denominator = ((conc + disc + tx) * (conc + disc + ty)) ** 0.5
        expected = None if denominator == 0 else (conc - disc) / denominator
        got = kendall_tau(xs, ys)
        assert (expected is None and got is None) or abs(got - expected) < 1e-9  # type: ignore[operator]
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0


def test_seat_map_tiny(tmp_path: Path) -> None:
    """The seat-map bench in Chromium on a small show: every seat drawn, rates reported."""
    proc, report, _ = _bench(tmp_path, "seat-map", "--seats", "2000", "--seconds", "0.5", timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert report["command"] == "seat-map" and report["seats_drawn"] == 2000
    assert 0 < report["first_draw_ms"] < 60_000 and len(report["first_draw_ms_runs"]) == 3
    assert report["steps"] and all(s["applied"] > 0 and s["worst_frame_ms"] > 0 for s in report["steps"])
    assert report["changes_per_second_within_budget"] in [0, *(s["rate"] for s in report["steps"])]
    assert "changes/s applied with no frame over 50 ms" in proc.stderr
