"""schemathesis hooks for tools/contract.py (loaded through SCHEMATHESIS_HOOKS).

Every request gets a login (but the coverage phase's one that leaves it out on purpose): the
admin's under /api/admin, a fresh account's where the request ends its login (logout, deleting the
account: the shared fan must outlive them), the fan's elsewhere. Every other request also gets
the ids and the admission token that tools/contract.py created, in place of the generated ones
(still valid data: positive cases stay positive), so the successful answers are checked against
the schema too, not only refusals of random ids.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario

STATE: dict[str, Any] = json.loads(Path(os.environ["BOXOFFICE_CONTRACT_STATE"]).read_text())
ENDS_LOGIN = {("POST", "/api/auth/logout"), ("DELETE", "/api/users/me")}
_turns = itertools.count()
_lock = threading.Lock()


def _fresh_login() -> str:
    """A new account's bearer token (signup + login)."""
    email = f"contract-{uuid.uuid4().hex[:12]}@example.com"
    with httpx.Client(base_url=STATE["base"], timeout=15) as c:
        c.post("/api/auth/signup", json={"email": email, "password": STATE["password"], "name": "Leaver"})
        resp = c.post("/api/auth/login", json={"email": email, "password": STATE["password"]})
    resp.raise_for_status()
    return f"Bearer {resp.json()['access_token']}"


def _login_for(method: str, path: str) -> str:
    if (method, path) in ENDS_LOGIN:
        return _fresh_login()
    return str(STATE["admin"] if path.startswith("/api/admin") else STATE["fan"])


def _known(values: dict[str, Any] | None) -> None:
    """Our ids in place of the generated ones, for the names we created."""
    if not isinstance(values, dict):
        return
    for name, value in STATE["ids"].items():
        if name in values:
            values[name] = value


def _without_login(case: Any) -> bool:
    """The coverage phase's case that leaves the Authorization header out on purpose (a 401)."""
    data = case.meta.phase.data if case.meta is not None else None
    return (
        isinstance(data, CoveragePhaseData)
        and data.scenario == CoverageScenario.MISSING_PARAMETER
        and (data.parameter or "").lower() == "authorization"
    )


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    operation = case.operation
    headers = case.headers if case.headers is not None else {}
    if not _without_login(case):
        headers["Authorization"] = _login_for(operation.method.upper(), operation.path)
    with _lock:
        realistic = next(_turns) % 2 == 0
    if realistic and case.meta is not None and not case.meta.generation.mode.is_negative:
        for name in list(headers):
            if name.lower() == "x-queue-token":
                headers[name] = STATE["queue_token"]
        _known(case.path_parameters)
        _known(case.query)
        _known(case.body)
    case.headers = headers
