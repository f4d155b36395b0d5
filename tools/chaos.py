"""Chaos run for CI (bounded, loopback): a short flash sale under `boxoffice up` while the embedded
Redis and PostgreSQL are killed with SIGKILL. Passes when every payment a client saw succeed is
RESERVED afterwards, the audit (I1-I4) holds, and the sale resumed by itself (a new successful
hold or payment) within 15 s of each fault. Prints the timeline.

    .venv/bin/python tools/chaos.py [--fans 30] [--seconds 45]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

RESUME_SECONDS = 15.0
PASSWORD = "Chaos-Passw0rd-1"  # noqa: S105 - the test fans' password


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sale:
    started: float = field(default_factory=time.monotonic)
    paid: set[int] = field(default_factory=set)
    successes: list[float] = field(default_factory=list)  # monotonic times of holds/payments won
    timeline: list[str] = field(default_factory=list)
    errors_5xx: dict[int, int] = field(default_factory=dict)
    missing: int = 0
    summary: str = ""

    def note(self, what: str) -> None:
        line = f"{time.monotonic() - self.started:6.1f}s  {what}"
        self.timeline.append(line)
        print(line, flush=True)


async def _call(
    c: httpx.AsyncClient, sale: Sale, method: str, url: str, **kw: object
) -> httpx.Response | None:
    try:
        resp = await c.request(method, url, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError:
        return None
    if resp.status_code >= 500:
        sale.errors_5xx[resp.status_code] = sale.errors_5xx.get(resp.status_code, 0) + 1
    return resp


async def _fan(base: str, n: int, show: dict[str, int], sale: Sale, until: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        email = f"chaos{n}-{uuid.uuid4().hex[:6]}@example.com"
        while time.monotonic() < until:
            r = await _call(
                c,
                sale,
                "POST",
                "/api/auth/signup",
                json={"email": email, "password": PASSWORD, "name": f"F{n}"},
            )
            if r is not None and r.status_code in (201, 409):
                break
            await asyncio.sleep(0.5)
        auth: dict[str, str] = {}
        while time.monotonic() < until and not auth:
            r = await _call(c, sale, "POST", "/api/auth/login", json={"email": email, "password": PASSWORD})
            if r is not None and r.status_code == 200:
                auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
            else:
                await asyncio.sleep(0.5)
        key = uuid.uuid4().hex
        while time.monotonic() < until:
            r = await _call(
                c,
                sale,
                "POST",
                "/api/users/me/balance",
                json={"amount": 1_000_000},
                headers={**auth, "Idempotency-Key": key},
            )
            if r is not None and r.status_code == 200:
                break
            await asyncio.sleep(0.5)
        token = None
        params = {"concert_id": show["concert_id"], "show_id": show["show_id"]}
        while time.monotonic() < until:
            if token is None:
                await _call(c, sale, "POST", "/api/queue", json=params, headers=auth)
                r = await _call(c, sale, "GET", "/api/queue/status", params=params, headers=auth)
                if r is not None and r.status_code == 200 and r.json().get("status") == "READY":
                    token = r.json()["token"]
                else:
                    await asyncio.sleep(0.5)
                    continue
            gated = {**auth, "X-Queue-Token": token}
            r = await _call(
                c,
                sale,
                "GET",
                f"/api/shows/{show['show_id']}/seats",
                params={"status": "AVAILABLE"},
                headers=gated,
            )
            if r is None or r.status_code != 200:
                if r is not None and r.status_code == 401:
                    token = None
                await asyncio.sleep(0.3)
                continue
            seats = [s["id"] for s in r.json().get("seats", [])]
            if not seats:
                return
            hold_key = uuid.uuid4().hex
            r = await _call(
                c,
                sale,
                "POST",
                "/api/reservations",
                json={"show_id": show["show_id"], "seat_ids": [random.choice(seats)]},
                headers={**gated, "Idempotency-Key": hold_key},
            )
            if r is None or r.status_code != 201:
                await asyncio.sleep(0.2)
                continue
            sale.successes.append(time.monotonic())
            rid = r.json()["reservation_id"]
            pay_key = uuid.uuid4().hex
            while time.monotonic() < until + 20:  # the same key until the outcome is known
                r = await _call(
                    c,
                    sale,
                    "POST",
                    "/api/payments",
                    json={"reservation_id": rid, "method": "BALANCE"},
                    headers={**gated, "Idempotency-Key": pay_key},
                )
                if r is not None and r.status_code in (200, 201):
                    if r.json().get("status") == "SUCCEEDED":
                        sale.paid.add(rid)
                        sale.successes.append(time.monotonic())
                    break
                if r is not None and 400 <= r.status_code < 500 and r.status_code not in (409, 429):
                    break
                await asyncio.sleep(0.3)
            await asyncio.sleep(random.uniform(0.1, 0.5))


def _backend_pid(data_dir: Path, kind: str) -> int | None:
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data_dir) in cmd and kind in cmd:
            try:
                if kind == "postgres" and "postgres" in " ".join(p.parent().cmdline()):
                    continue
            except psutil.Error:
                continue
            return p.pid
    return None


async def _faults(data_dir: Path, sale: Sale, kinds: list[str], until: float) -> list[tuple[str, float]]:
    """Each fault once the sale is really selling (a payment since the last fault, and 3 s of it)."""
    resumed: list[tuple[str, float]] = []
    for kind in kinds:
        while time.monotonic() < until and not (sale.successes and sale.successes[-1] > time.monotonic() - 1):
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
        pid = _backend_pid(data_dir, kind)
        if pid is None:
            raise SystemExit(f"chaos: no {kind} process to kill")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        sale.note(f"kill -9 {kind} (pid {pid})")
        while time.monotonic() - killed < 60:
            later = [t for t in sale.successes if t > killed + 0.5]
            if later:
                sale.note(f"sale resumed {later[0] - killed:.1f} s after the {kind} kill")
                resumed.append((kind, later[0] - killed))
                break
            await asyncio.sleep(0.1)
        else:
            resumed.append((kind, float("inf")))
            sale.note(f"sale did NOT resume within 60 s after the {kind} kill")
    return resumed


async def _check_database(data_dir: Path, paid: set[int]) -> tuple[int, str]:
    from sqlalchemy import text

    from boxoffice.audit import audit
    from boxoffice.config import Settings
    from boxoffice.db import create_engine, session_factory

    urls = json.loads((data_dir / "backends.json").read_text())
    engine = create_engine(Settings(), urls["database_url"])
    try:
        async with session_factory(engine)() as s:
            rows = (
                await s.execute(
                    text("SELECT id, status FROM reservations WHERE id = ANY(:ids)"), {"ids": list(paid)}
                )
            ).all()
            not_reserved = [r for r in rows if r.status != "RESERVED"] + [None] * (len(paid) - len(rows))
        async with session_factory(engine)() as s, s.begin():
            report = await audit(s)
        return len(not_reserved), report.summary() if report.ok else "AUDIT FAILED: " + report.summary()
    finally:
        await engine.dispose()


def _start_up(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env.update(
        BOXOFFICE_DATA_DIR=str(data_dir),
        BOXOFFICE_PORT=str(port),
        BOXOFFICE_PAYMENT_PROVIDER_PORT=str(_free_port()),
    )
    with open(log_path, "wb") as log_file:  # a file, not a pipe: nobody reads a pipe mid-sale
        up = subprocess.Popen(
            [sys.executable, "-m", "boxoffice.cli", "up"], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if up.poll() is not None or time.monotonic() > deadline:
            up.kill()
            raise SystemExit(f"chaos: up did not start: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return up, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)


async def _run_sale(
    base: str, data_dir: Path, fans: int, seconds: float
) -> tuple[Sale, list[tuple[str, float]]]:
    show_id = 1
    async with httpx.AsyncClient(base_url=base, timeout=5) as c:
        show = (await c.get(f"/api/shows/{show_id}")).json()
    target = {"show_id": show_id, "concert_id": int(show["concert_id"])}
    sale = Sale()
    sale.note(f"sale starts: {fans} fans, {seconds:.0f} s, show {show_id}")
    until = sale.started + seconds
    tasks = [asyncio.create_task(_fan(base, n, target, sale, until)) for n in range(fans)]
    resumed = await _faults(data_dir, sale, ["redis-server", "postgres"], until)
    await asyncio.gather(*tasks)
    sale.note(
        f"sale over: {len(sale.paid)} payments seen succeeding; 5xx answers {sale.errors_5xx or 'none'}"
    )
    missing, summary = await _check_database(data_dir, sale.paid)
    sale.note(f"database: {missing} of them not RESERVED; {summary}")
    sale.summary = summary
    sale.missing = missing
    return sale, resumed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fans", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=45)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bo-chaos-"))
    data_dir, log_path = workdir / "data", workdir / "up.log"
    up, base = _start_up(data_dir, log_path)
    try:
        sale, resumed = asyncio.run(_run_sale(base, data_dir, args.fans, args.seconds))
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        lines = log_path.read_text().splitlines()
        supervision = [line for line in lines if "child_died" in line or "child_restarted" in line]
        print(f"up log: {len(lines)} lines, {len(supervision)} about supervision ({log_path})", flush=True)
    failed = []
    if sale.missing:
        failed.append(f"{sale.missing} paid reservations are not RESERVED")
    if "AUDIT FAILED" in sale.summary:
        failed.append(sale.summary)
    failed += [
        f"no resume within {RESUME_SECONDS:.0f} s after the {k} kill ({t:.1f} s)"
        for k, t in resumed
        if t > RESUME_SECONDS
    ]
    if not sale.paid:
        failed.append("no payment succeeded at all")
    if 500 in sale.errors_5xx:
        failed.append(f"{sale.errors_5xx[500]} answers were 500")
    print("chaos: " + ("PASS" if not failed else "FAIL: " + "; ".join(failed)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
