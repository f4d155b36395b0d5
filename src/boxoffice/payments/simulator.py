"""The card payment provider simulator we ship (seed 004): an external card API in miniature.

Charges keyed by the caller's idempotency key (a repeated POST returns the first charge, never a
second one), refunds by charge id, and faults on demand — latency, declines, timeouts (charged, but
the answer comes after the client gave up) and "charged but the answer was lost". Tests force the
next outcomes through POST /simulator/next. Kept apart from the client (provider.py) so that the
paying flows import no web framework.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from boxoffice.config import Settings

Outcome = Literal["ok", "fail", "timeout", "lost"]


@dataclass
class SimulatorConfig:
    latency_ms: int = 0
    failure_rate: float = 0.0
    timeout_rate: float = 0.0
    lost_rate: float = 0.0
    # How long a "timeout" answer takes: longer than any sane client timeout.
    timeout_sleep_seconds: float = 30.0
    seed: int | None = None


@dataclass
class _SimState:
    config: SimulatorConfig
    rng: random.Random
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    forced: deque[Outcome] = field(default_factory=deque)
    posts: int = 0
    refund_calls: int = 0

    def next_outcome(self) -> Outcome:
        if self.forced:
            return self.forced.popleft()
        c = self.config
        roll = self.rng.random()
        for outcome, rate in (("fail", c.failure_rate), ("timeout", c.timeout_rate), ("lost", c.lost_rate)):
            if roll < rate:
                return outcome  # type: ignore[return-value]
            roll -= rate
        return "ok"


class ChargeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    idempotency_key: str = Field(min_length=1, max_length=255)
    amount: int = Field(ge=0, le=10**12)  # in the currency's minor unit, as real providers take it
    currency: str = Field(pattern=r"^[A-Z]{3}$")  # ISO 4217; a charge without one is refused (422)
    # A (test) card number: the answer carries the card's fingerprint (the same card, the same
    # fingerprint, like a real provider's) and its last four digits; never the number itself.
    card_number: str | None = Field(default=None, pattern=r"^[0-9]{12,19}$")


_FINGERPRINT_KEY = b"boxoffice-simulator-card-fingerprint"


def card_of(number: str) -> dict[str, str]:
    digest = hmac.new(_FINGERPRINT_KEY, number.encode(), hashlib.sha256).hexdigest()
    return {"fingerprint": f"fp_{digest[:24]}", "last4": number[-4:]}


class ForceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcomes: list[Outcome] = Field(max_length=1000)


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    timeout_rate: float | None = Field(default=None, ge=0, le=1)
    lost_rate: float | None = Field(default=None, ge=0, le=1)
    timeout_sleep_seconds: float | None = Field(default=None, ge=0, le=600)


def create_simulator_app(config: SimulatorConfig | None = None) -> FastAPI:
    cfg = config or SimulatorConfig()
    state = _SimState(config=cfg, rng=random.Random(cfg.seed))
    app = FastAPI(title="Boxoffice payment-provider simulator", version="0.1.0")
    app.state.sim = state

    @app.post("/charges")
    async def create_charge(body: ChargeIn) -> JSONResponse:
        state.posts += 1
        existing = state.by_key.get(body.idempotency_key)
        if existing is not None:  # the same key never charges twice
            return JSONResponse(existing, status_code=402 if existing["status"] == "FAILED" else 200)
        outcome = state.next_outcome()
        charge: dict[str, Any] = {
            "id": f"ch_{uuid.uuid4().hex}",
            "idempotency_key": body.idempotency_key,
            "amount": body.amount,
            "currency": body.currency,
            "status": "FAILED" if outcome == "fail" else "SUCCEEDED",
        }
        if body.card_number is not None:
            charge["card"] = card_of(body.card_number)
        # Recorded on arrival: a timed-out or lost answer still means the card was charged.
        state.by_key[body.idempotency_key] = charge
        state.by_id[charge["id"]] = charge
        if state.config.latency_ms:
            await asyncio.sleep(state.config.latency_ms / 1000)
        if outcome == "timeout":
            await asyncio.sleep(state.config.timeout_sleep_seconds)
        if outcome == "lost":
            return JSONResponse({"error": "upstream connection reset"}, status_code=502)
        return JSONResponse(charge, status_code=402 if outcome == "fail" else 201)

    @app.get("/charges/{idempotency_key}")
    async def get_charge(idempotency_key: Annotated[str, Path(max_length=255)]) -> JSONResponse:
        charge = state.by_key.get(idempotency_key)
        if charge is None:
            return JSONResponse({"error": "no such charge"}, status_code=404)
        return JSONResponse(charge)

    @app.post("/charges/{charge_id}/refund")
    async def refund(charge_id: Annotated[str, Path(max_length=100)]) -> JSONResponse:
        state.refund_calls += 1
        charge = state.by_id.get(charge_id)
        if charge is None:
            return JSONResponse({"error": "no such charge"}, status_code=404)
        if charge["status"] == "FAILED":
            return JSONResponse({"error": "charge failed; nothing to refund"}, status_code=409)
        charge["status"] = "REFUNDED"
        return JSONResponse(charge)

    @app.post("/simulator/next")
    async def force(body: ForceIn) -> dict[str, int]:
        state.forced.extend(body.outcomes)
        return {"queued": len(state.forced)}

    @app.patch("/simulator/config")
    async def configure(body: ConfigIn) -> dict[str, Any]:
        for name, value in body.model_dump(exclude_none=True).items():
            setattr(state.config, name, value)
        return {k: getattr(state.config, k) for k in ConfigIn.model_fields}

    @app.get("/simulator/stats")
    async def stats() -> dict[str, int]:
        charges = list(state.by_key.values())
        return {
            "posts": state.posts,
            "charges": len(charges),
            "succeeded": sum(1 for c in charges if c["status"] == "SUCCEEDED"),
            "refunded": sum(1 for c in charges if c["status"] == "REFUNDED"),
            "failed": sum(1 for c in charges if c["status"] == "FAILED"),
            "captured_amount": sum(c["amount"] for c in charges if c["status"] == "SUCCEEDED"),
            "refund_calls": state.refund_calls,
        }

    return app


async def serve_simulator(
    settings: Settings,
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    own_signals: bool = False,
) -> None:
    """Run the simulator until cancelled. `boxoffice up` runs it in-process when no provider URL is
    set (its own signal handling stays in charge); `boxoffice payment-provider` passes own_signals."""
    import contextlib
    from collections.abc import Iterator

    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if own_signals:
                with super().capture_signals():
                    yield
            else:
                yield

    server = _Server(
        uvicorn.Config(
            create_simulator_app(config),
            host=host,
            port=settings.payment_provider_port if port is None else port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    await server.serve()
