"""run_idempotent: exactly-once work per key, replay, key reuse, in-progress, errors not stored."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from boxoffice.db.idempotency import run_idempotent
from boxoffice.db.uow import UnitOfWork
from boxoffice.errors import BadRequest, Conflict, InsufficientBalance, PaymentRequired, Unprocessable
from boxoffice.http.deps import respond
from boxoffice.payments.ledger import credit
from boxoffice.runtime import Runtime
from tests.factories import make_user


async def _ledger_rows(runtime: Runtime, user_id: int) -> int:
    async with runtime.sessions() as s:
        return int(
            (
                await s.execute(
                    text("SELECT count(*) FROM balance_ledger WHERE user_id = :u"), {"u": user_id}
                )
            ).scalar_one()
        )


async def _balance(runtime: Runtime, user_id: int) -> int:
    async with runtime.sessions() as s:
        return int(
            (await s.execute(text("SELECT balance FROM users WHERE id = :u"), {"u": user_id})).scalar_one()
        )


def _topup(user_id: int, amount: int):  # type: ignore[no-untyped-def]
    async def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        balance = await credit(uow.session, user_id, amount, "TOPUP", "test")
        return 200, {"balance": balance}

    return work


async def test_same_key_runs_the_work_once_and_replays(runtime: Runtime) -> None:
    user = await make_user(runtime)
    kwargs = {"user_id": user["id"], "scope": "test", "key": "k1", "fingerprint": {"amount": 100}}
    first = await run_idempotent(runtime, work=_topup(user["id"], 100), **kwargs)
    second = await run_idempotent(runtime, work=_topup(user["id"], 100), **kwargs)
    assert (first.status, first.body, first.replayed) == (200, {"balance": 100}, False)
    assert (second.status, second.body, second.replayed) == (200, {"balance": 100}, True)
    assert await _ledger_rows(runtime, user["id"]) == 1


async def test_same_key_different_body_is_refused(runtime: Runtime) -> None:
    user = await make_user(runtime)
    await run_idempotent(
        runtime, user_id=user["id"], scope="t", key="k", fingerprint={"a": 1}, work=_topup(user["id"], 1)
    )
    with pytest.raises(Unprocessable) as err:
        await run_idempotent(
            runtime, user_id=user["id"], scope="t", key="k", fingerprint={"a": 2}, work=_topup(user["id"], 2)
        )
    assert err.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert await _balance(runtime, user["id"]) == 1


async def test_keys_are_scoped_per_user_and_route(runtime: Runtime) -> None:
    a, b = await make_user(runtime), await make_user(runtime)
    for user, scope in ((a, "x"), (a, "y"), (b, "x")):
        r = await run_idempotent(
            runtime, user_id=user["id"], scope=scope, key="same", fingerprint={}, work=_topup(user["id"], 5)
        )
        assert not r.replayed
    assert await _balance(runtime, a["id"]) == 10 and await _balance(runtime, b["id"]) == 5


async def test_missing_key_when_required(runtime: Runtime) -> None:
    user = await make_user(runtime)
    with pytest.raises(BadRequest) as err:
        await run_idempotent(
            runtime, user_id=user["id"], scope="t", key=None, fingerprint={}, work=_topup(user["id"], 1)
        )
    assert err.value.code == "IDEMPOTENCY_KEY_REQUIRED"
    with pytest.raises(BadRequest) as bad:
        await run_idempotent(
            runtime, user_id=user["id"], scope="t", key="x" * 300, fingerprint={}, work=_topup(user["id"], 1)
        )
    assert bad.value.code == "IDEMPOTENCY_KEY_INVALID"
    assert await _ledger_rows(runtime, user["id"]) == 0


async def test_errors_are_not_stored_and_a_retry_does_the_work(runtime: Runtime) -> None:
    user = await make_user(runtime)

    async def short(uow: UnitOfWork) -> tuple[int, Any]:
        await credit(uow.session, user["id"], 50, "ADJUSTMENT", "test")  # rolled back with the claim
        raise InsufficientBalance("The balance does not cover this payment")

    with pytest.raises(PaymentRequired):
        await run_idempotent(runtime, user_id=user["id"], scope="t", key="k", fingerprint={}, work=short)
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM idempotency_keys"))).scalar_one() == 0
    ok = await run_idempotent(
        runtime, user_id=user["id"], scope="t", key="k", fingerprint={}, work=_topup(user["id"], 7)
    )
    assert ok.status == 200 and not ok.replayed
    assert await _balance(runtime, user["id"]) == 7  # the failed work's credit rolled back


async def test_fifty_concurrent_requests_with_one_key_change_the_balance_once(runtime: Runtime) -> None:
    user = await make_user(runtime)

    async def attempt() -> Any:
        try:
            return await run_idempotent(
                runtime,
                user_id=user["id"],
                scope="t",
                key="burst",
                fingerprint={"amount": 10},
                work=_topup(user["id"], 10),
            )
        except Conflict as exc:
            return exc.code

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    fresh = [r for r in results if not isinstance(r, str) and not r.replayed]
    assert len(fresh) == 1
    assert all(r == "IDEMPOTENCY_IN_PROGRESS" or r.body == {"balance": 10} for r in results)
    assert await _ledger_rows(runtime, user["id"]) == 1
    assert await _balance(runtime, user["id"]) == 10


async def test_a_crash_in_the_middle_of_the_work_leaves_no_claim_behind(runtime: Runtime) -> None:
    user = await make_user(runtime)

    async def crash(uow: UnitOfWork) -> tuple[int, Any]:
        await credit(uow.session, user["id"], 5, "TOPUP", "t")
        raise RuntimeError("the process died here")

    with pytest.raises(RuntimeError):
        await run_idempotent(runtime, user_id=user["id"], scope="t", key="k", fingerprint={}, work=crash)
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM idempotency_keys"))).scalar_one() == 0
    retry = await run_idempotent(
        runtime, user_id=user["id"], scope="t", key="k", fingerprint={}, work=_topup(user["id"], 3)
    )
    assert retry.status == 200 and not retry.replayed
    assert await _balance(runtime, user["id"]) == 3 and await _ledger_rows(runtime, user["id"]) == 1


async def test_a_duplicate_waits_for_the_first_and_replays_its_answer(runtime: Runtime) -> None:
    user = await make_user(runtime)
    started = asyncio.Event()

    async def slow(uow: UnitOfWork) -> tuple[int, Any]:
        started.set()
        await asyncio.sleep(0.3)
        balance = await credit(uow.session, user["id"], 9, "TOPUP", "t")
        return 201, {"balance": balance}

    kwargs = {"user_id": user["id"], "scope": "t", "key": "dup", "fingerprint": {"a": 1}}
    first = asyncio.create_task(run_idempotent(runtime, work=slow, **kwargs))
    await started.wait()
    second = await run_idempotent(runtime, work=_topup(user["id"], 1000), **kwargs)
    assert (await first).replayed is False
    assert second.replayed and second.status == 201 and second.body == {"balance": 9}
    assert await _ledger_rows(runtime, user["id"]) == 1


async def test_a_duplicate_waiting_longer_than_the_lock_timeout_gets_409(runtime: Runtime) -> None:
    user = await make_user(runtime)
    started = asyncio.Event()

    async def too_slow(uow: UnitOfWork) -> tuple[int, Any]:
        started.set()
        await asyncio.sleep(3.5)  # past the connections' lock_timeout (3 s)
        return 200, {}

    kwargs = {"user_id": user["id"], "scope": "t", "key": "long", "fingerprint": {}}
    first = asyncio.create_task(run_idempotent(runtime, work=too_slow, **kwargs))
    await started.wait()
    with pytest.raises(Conflict) as err:
        await run_idempotent(runtime, work=_topup(user["id"], 1), **kwargs)
    assert err.value.code == "IDEMPOTENCY_IN_PROGRESS" and err.value.headers["Retry-After"] == "1"
    assert (await first).status == 200
    assert await _ledger_rows(runtime, user["id"]) == 0


async def test_a_replayed_response_says_so_in_a_header(runtime: Runtime) -> None:
    user = await make_user(runtime)
    kwargs = {"user_id": user["id"], "scope": "t", "key": "h", "fingerprint": {}}
    fresh = respond(await run_idempotent(runtime, work=_topup(user["id"], 1), **kwargs))
    replay = respond(await run_idempotent(runtime, work=_topup(user["id"], 1), **kwargs))
    assert "idempotent-replayed" not in fresh.headers
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.body == fresh.body and replay.status_code == fresh.status_code == 200
