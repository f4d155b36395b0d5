"""The web forms get the fuzzing the JSON API has (issue 26, "Also").

Random and hostile values (control characters, huge numbers, inf/nan, long strings, wrong types,
hostile ids) posted with a valid CSRF token, as a logged-in administrator (so the console's forms
are reached too), to every page form and /web write: never a 5xx, and a refusal changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from boxoffice.auth.service import ensure_account
from boxoffice.runtime import Runtime
from tests.helpers.shows import make_show
from tests.integration.test_web_layer import HTML

FORMS = [
    "/login",
    "/signup",
    "/account/top-up",
    "/shows/{id}/queue",
    "/reservations/{id}/cancel",
    "/reservations/{id}/pay",
    "/admin/venues",
    "/admin/concerts",
    "/admin/concerts/{id}",
    "/admin/concerts/{id}/retire",
    "/admin/concerts/{id}/shows",
    "/admin/shows/{id}",
    "/admin/shows/{id}/queue",
    "/admin/shows/{id}/queue/pause",
    "/admin/shows/{id}/queue/resume",
    "/admin/reservations/{id}/cancel",
]
JSON_ROUTES = ["/web/reservations", "/web/queue/{id}/admit"]
FIELDS = [
    "email", "password", "name", "next", "amount", "idempotency_key", "reason", "method", "quantity",
    "seat_ids", "show_id", "section", "price", "starts_at", "sale_opens_at", "sale_closes_at",
    "hold_seconds", "max_seats_per_reservation", "refund_cutoff_hours", "admit_per_second",
    "max_active", "artist", "description", "venue_id", "sections", "rows", "seats_per_row",
    "concert_id", "prices",
]  # fmt: skip
HOSTILE = st.sampled_from(
    ["inf", "-inf", "nan", "1e309", "9" * 400, "-1", "0", "", "\x00", "\u202e", "<script>x</script>",
     "../../etc/passwd", "' OR 1=1 --", "2026-13-45T99:99", "true", "null", "[]", "{}", "a" * 5000]
)  # fmt: skip
VALUES = st.one_of(HOSTILE, st.text(max_size=200), st.integers(-(2**70), 2**70).map(str))
IDS = st.sampled_from(["1", "2", "0", "-1", "99999999999999999999999", "abc", "1.5"])
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), VALUES),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=5),
    max_leaves=10,
)

_SNAPSHOT = text(
    "SELECT (SELECT count(*) FROM users), (SELECT coalesce(sum(balance), 0) FROM users), "
    "(SELECT count(*) FROM venues), (SELECT count(*) FROM concerts), "
    "(SELECT count(*) FROM shows), (SELECT max(updated_at) FROM shows), "
    "(SELECT max(updated_at) FROM concerts), "
    "(SELECT string_agg(status, ',' ORDER BY id) FROM reservations), (SELECT count(*) FROM payments)"
)


async def _snapshot(runtime: Runtime) -> tuple[Any, ...]:
    async with runtime.sessions() as s:
        return tuple((await s.execute(_SNAPSHOT)).one())


@pytest.fixture
async def admin_browser(app, runtime: Runtime):  # type: ignore[no-untyped-def]
    await make_show(runtime, seats=4)
    transport = httpx.ASGITransport(app=app)
    async with runtime.sessions() as s, s.begin():
        await ensure_account(
            s,
            runtime.settings,
            email="fuzz-admin@example.test",
            password="correct horse",
            name="A",
            role="ADMIN",
        )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as c:
        page = await c.get("/login")
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        assert token
        resp = await c.post(
            "/login",
            data={
                "csrf_token": token.group(1),
                "email": "fuzz-admin@example.test",
                "password": "correct horse",
            },
        )
        assert resp.status_code == 303
        account = await c.get("/account")
        csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', account.text)
        assert csrf
        # the token works (the fuzz is not just refused at the CSRF check)
        ok = await c.post(
            "/account/top-up",
            data={"csrf_token": csrf.group(1), "amount": "1.00", "idempotency_key": "fuzz-ok"},
        )
        assert ok.status_code == 303, ok.text
        yield c, csrf.group(1)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(FORMS + JSON_ROUTES),
    path_id=IDS,
    form=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6),
    body=JSON_VALUES,
)
async def test_hostile_web_form_values_are_refused_cleanly(
    admin_browser: tuple[httpx.AsyncClient, str],
    runtime: Runtime,
    route: str,
    path_id: str,
    form: dict[str, str],
    body: Any,
) -> None:
    client, csrf = admin_browser
    path = route.replace("{id}", path_id)
    before = await _snapshot(runtime)
    if route in JSON_ROUTES:
        resp = await client.post(
            path, json=body, headers={"X-CSRF-Token": csrf, "Accept": "application/json"}
        )
    else:
        resp = await client.post(path, data={**form, "csrf_token": csrf})
    assert resp.status_code < 500, (path, form if route in FORMS else body, resp.status_code, resp.text[:300])
    if resp.status_code >= 400:
        assert await _snapshot(runtime) == before, (path, resp.status_code)
