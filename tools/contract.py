"""The OpenAPI contract, checked against the product as users start it (bounded, loopback).

Starts `boxoffice up` on a fresh data dir (embedded PostgreSQL and Redis), creates what the
authenticated operations need (an admin, a fan with a balance and an admission token, a show of
our own with a paid and a held reservation), then runs schemathesis over every operation and
fails on any 5xx and on any answer whose status, content type, headers or body the OpenAPI does
not document. tools/contract_hooks.py gives each request its login and, on every other request,
the ids and the admission token of what was created here (so the successful answers are checked
too, not only the refusals of random ids).

    make contract   (or: .venv/bin/python tools/contract.py [--max-examples 12] [--seconds 220] [--seed N])
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HOOKS = Path(__file__).with_name("contract_hooks.py")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    # Negative mode: a request the schema forbids ("1" for an integer, a number for a date-time,
    # a field too long, an unknown field) must be refused with a 4xx. This is what keeps the
    # schema's types as strict as the API's.
    "negative_data_rejection",
    "missing_required_header",  # a header the schema requires is refused when missing
    "unsupported_method",  # a method the path does not have: 405 with an Allow header
    "allow_header_conformance",  # ... that lists exactly the path's methods
    # Not positive_data_acceptance: the API refuses, with 422, requests that no schema can
    # describe (a sale window out of order, a price for a section the venue lacks).
)
# An SSE stream answers 200 and never ends: schemathesis would wait for a body that never comes.
# Their refusals are the gate's and the ids' (the same dependencies as their neighbours');
# tests/integration/test_openapi.py checks their documented answers.
EXCLUDE_PATH_REGEX = r"/stream$"
PASSWORD = "Contract-Passw0rd-1"  # noqa: S105 - the run's own test accounts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(workdir: Path, admin_password: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`boxoffice up` on a new data dir; returns once /readyz says ok."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXOFFICE_")}
    env.update(
        BOXOFFICE_DATA_DIR=str(workdir / "data"),
        BOXOFFICE_PORT=str(port),
        BOXOFFICE_GRPC_PORT=str(_free_port()),
        BOXOFFICE_PAYMENT_PROVIDER_PORT=str(_free_port()),
        BOXOFFICE_ADMIN_PASSWORD=admin_password,
        # The run sends thousands of wrong logins from one address and logs in again before each
        # request that ends a login (logout, account deletion): failure budgets far above a
        # person's (the limits have their own tests, tests/security/test_login_throttle.py).
        BOXOFFICE_LIMIT_FAILED_LOGINS_PER_ADDRESS="0",
        BOXOFFICE_LIMIT_FAILED_LOGINS_PER_ACCOUNT_AND_ADDRESS="1000000",
        BOXOFFICE_LIMIT_SIGNUPS_PER_ADDRESS_PER_HOUR="0",
    )
    log_path = workdir / "up.log"
    with open(log_path, "wb") as log_file:
        up = subprocess.Popen(
            [sys.executable, "-m", "boxoffice.cli", "up"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if up.poll() is not None or time.monotonic() > deadline:
            _stop(up)
            raise SystemExit(f"contract: boxoffice up did not start:\n{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return up, base, log_path
        except httpx.HTTPError:
            pass
        time.sleep(0.3)


def _stop(up: subprocess.Popen[bytes]) -> None:
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
    try:
        up.wait(60)
    except subprocess.TimeoutExpired:
        up.kill()
        up.wait()


def _ok(resp: httpx.Response, *statuses: int) -> dict[str, Any]:
    if resp.status_code not in statuses:
        raise SystemExit(
            f"contract setup: {resp.request.method} {resp.request.url} -> {resp.status_code} {resp.text}"
        )
    return resp.json() if resp.content else {}


def _login(c: httpx.Client, email: str, password: str) -> dict[str, str]:
    token = _ok(c.post("/api/auth/login", json={"email": email, "password": password}), 200)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _setup(base: str, admin_password: str) -> dict[str, Any]:
    """Everything the authenticated operations need, made through the API itself."""
    with httpx.Client(base_url=base, timeout=15) as c:
        admin = _login(c, "admin@boxoffice.local", admin_password)
        email = f"contract-fan-{uuid.uuid4().hex[:8]}@example.com"
        fan_id = _ok(
            c.post("/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Fan"}), 201
        )["id"]
        fan = _login(c, email, PASSWORD)
        _ok(
            c.post(
                "/api/users/me/balance", json={"amount": 1_000_000}, headers={**fan, "Idempotency-Key": "k1"}
            ),
            200,
        )
        venue = _ok(
            c.post(
                "/api/admin/venues",
                json={
                    "name": f"Contract Hall {uuid.uuid4().hex[:6]}",
                    "sections": [{"name": "Floor", "rows": 4, "seats_per_row": 10}],
                },
                headers=admin,
            ),
            201,
        )
        concert = _ok(
            c.post(
                "/api/admin/concerts",
                json={"name": "Contract Night", "artist": "The Schemas", "venue_id": venue["id"]},
                headers=admin,
            ),
            201,
        )
        now = datetime.now(UTC)
        show = _ok(
            c.post(
                f"/api/admin/concerts/{concert['id']}/shows",
                json={
                    "starts_at": (now + timedelta(days=30)).isoformat(),
                    "sale_opens_at": (now - timedelta(minutes=1)).isoformat(),
                    "prices": {"Floor": 5000},
                    "max_seats_per_reservation": 10,
                },
                headers=admin,
            ),
            201,
        )
        # The setup's own fan joins without the toll (a proof of work); schemathesis still meets
        # the toll on the shows it generates (428 QUEUE_CHALLENGE_REQUIRED is documented).
        _ok(c.patch(f"/api/admin/shows/{show['id']}/queue", json={"pow_difficulty": 0}, headers=admin), 200)
        ids = {"concert_id": concert["id"], "show_id": show["id"]}
        _ok(c.post("/api/queue", json=ids, headers=fan), 200)
        deadline = time.monotonic() + 30
        while True:  # the worker admits the fan within a tick or two
            status = _ok(c.get("/api/queue/status", params=ids, headers=fan), 200)
            if status["status"] == "READY":
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"contract setup: the fan was not admitted in 30 s: {status}")
            time.sleep(0.3)
        gated = {**fan, "X-Queue-Token": status["token"]}
        seats = _ok(
            c.get(f"/api/shows/{show['id']}/seats", params={"status": "AVAILABLE"}, headers=gated), 200
        )
        seat_ids = [seat["id"] for seat in seats["seats"]]
        paid = _ok(
            c.post(
                "/api/reservations", json={"show_id": show["id"], "seat_ids": seat_ids[:2]}, headers=gated
            ),
            201,
        )
        payment = _ok(
            c.post(
                "/api/payments",
                json={"reservation_id": paid["reservation_id"], "method": "BALANCE"},
                headers={**fan, "Idempotency-Key": "p1"},
            ),
            201,
        )
        return {
            "base": base,
            "admin": admin["Authorization"],
            "fan": fan["Authorization"],
            "queue_token": status["token"],
            "password": PASSWORD,
            "ids": {
                **ids,
                "venue_id": venue["id"],
                "reservation_id": paid["reservation_id"],
                "payment_id": payment["payment_id"],
                "user_id": fan_id,
                "seat_ids": seat_ids[2:4],
            },
            "fan_email": email,
        }


def _is_error(line: str) -> bool:
    """An error line of the product's JSON log (a 5xx, an unhandled exception, a dead child)."""
    try:
        return json.loads(line).get("log.level") in ("error", "critical")
    except ValueError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-examples", type=int, default=12, help="test cases per operation and phase")
    parser.add_argument("--seconds", type=float, default=220, help="hard bound on the schemathesis run")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bo-contract-"))
    workdir.chmod(0o711)  # as root, `up` runs PostgreSQL as its own user, which must enter it
    admin_password = secrets.token_urlsafe(18)
    started = time.monotonic()
    up, base, log_path = _start(workdir, admin_password)
    try:
        state = _setup(base, admin_password)
        state_path = workdir / "state.json"
        state_path.write_text(json.dumps(state))
        print(f"contract: up and set up in {time.monotonic() - started:.0f} s ({workdir})", flush=True)
        command = [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{base}/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--mode",
            "all",
            "--max-examples",
            str(args.max_examples),
            "--seed",
            str(args.seed),
            # One worker: hypothesis parses lambda sources with ast, and CPython 3.11's parser is
            # not thread-safe ("AST constructor recursion depth mismatch" with two workers).
            "--workers",
            "1",
            "--request-timeout",
            "15",
            "--exclude-path-regex",
            EXCLUDE_PATH_REGEX,
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(workdir / "report"),
        ]
        print("contract: " + " ".join(command), flush=True)
        env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "BOXOFFICE_CONTRACT_STATE": str(state_path)}
        run_started = time.monotonic()
        try:
            # in the work dir: schemathesis keeps its cache (.schemathesis/) in the current one
            code = subprocess.run(command, env=env, cwd=workdir, timeout=args.seconds, check=False).returncode
        except subprocess.TimeoutExpired:
            print(f"contract: FAIL: schemathesis did not finish within {args.seconds:.0f} s", flush=True)
            return 1
        print(f"contract: schemathesis took {time.monotonic() - run_started:.0f} s", flush=True)
    finally:
        _stop(up)
    errors = [line for line in log_path.read_text().splitlines() if _is_error(line)]
    print(f"contract: up log {log_path}: {len(errors)} error lines", flush=True)
    for line in errors[:5]:
        print("  " + line[:300], flush=True)
    if code != 0 or errors:
        print("contract: FAIL", flush=True)
        return 1
    print(f"contract: PASS in {time.monotonic() - started:.0f} s", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)  # kept when it fails: the log and the JUnit report
    return 0


if __name__ == "__main__":
    sys.exit(main())
