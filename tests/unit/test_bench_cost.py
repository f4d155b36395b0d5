"""The pure parts of `boxoffice bench cost`: profile shares from py-spy's raw output, and the
median of rounds."""

from __future__ import annotations

from boxoffice.bench.cost import profile_shares, summarize

RAW = "\n".join(
    [
        "Runner.run (asyncio/runners.py:118);execute (sqlalchemy/orm/session.py:10);"
        "_do_execute (asyncpg/connection.py:2066) 6",
        "Runner.run (asyncio/runners.py:118);send (uvicorn/protocols/http/httptools_impl.py:524) 3",
        "Runner.run (asyncio/runners.py:118) 1",
        "not a sample line",
    ]
)


def test_profile_shares_inclusive_and_self() -> None:
    shares = profile_shares(RAW)
    assert shares["samples"] == 10
    assert shares["share_with_frame_in"] == {"sqlalchemy": 0.6, "asyncpg": 0.6}
    # Each sample belongs to its innermost known package; the loop itself to no package.
    assert shares["self_share_by_package"] == {"asyncpg": 0.6, "uvicorn": 0.3, "(event loop, stdlib)": 0.1}


def test_profile_shares_of_nothing() -> None:
    assert profile_shares("") == {"samples": 0}


def test_summarize_takes_the_median_of_rounds_and_the_ratio_to_healthz() -> None:
    rounds = [
        {kind: {"us_per_request": {"api": api, "api_system": 10.0}} for kind, api in values.items()}
        for values in (
            {"healthz": 100.0, "hold_won": 900.0, "hold_refused": 300.0, "pay_balance": 1000.0},
            {"healthz": 120.0, "hold_won": 1000.0, "hold_refused": 360.0, "pay_balance": 1500.0},
            {"healthz": 110.0, "hold_won": 1100.0, "hold_refused": 330.0, "pay_balance": 1100.0},
        )
    ]
    summary = summarize(rounds)
    assert summary["hold_won"]["api"] == {"median": 1000.0, "min": 900.0, "max": 1100.0, "vs_healthz": 9.09}
    assert summary["healthz"]["api"]["vs_healthz"] == 1.0
    assert summary["pay_balance"]["api_system"]["median"] == 10.0
