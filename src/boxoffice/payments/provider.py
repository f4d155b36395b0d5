"""The card payment provider: our HTTP client for it (the simulator we ship is simulator.py).

No web framework here: the flows that pay and every front door (HTTP, gRPC) import this client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from boxoffice.config import Settings
from boxoffice.errors import ServiceUnavailable
from boxoffice.kit import trace


def provider_url(settings: Settings) -> str:
    """The configured provider, or the simulator `boxoffice up` starts on the loopback."""
    if settings.payment_provider_url:
        return settings.payment_provider_url.rstrip("/")
    return f"http://127.0.0.1:{settings.payment_provider_port}"


# ---------------------------------------------------------------- client


class ProviderUnavailable(ServiceUnavailable):
    code = "PAYMENT_PROVIDER_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    idempotency_key: str
    amount: int
    status: str  # SUCCEEDED | FAILED | REFUNDED
    card_fingerprint: str | None = None  # when the request named a card


@dataclass(frozen=True, slots=True)
class ChargeAttempt:
    """SUCCEEDED / FAILED are answers; UNKNOWN means we cannot tell (timeout, lost answer, 5xx)."""

    status: Literal["SUCCEEDED", "FAILED", "UNKNOWN"]
    charge: Charge | None = None
    timed_out: bool = False


def _charge(data: dict[str, Any]) -> Charge:
    return Charge(
        id=str(data["id"]),
        idempotency_key=str(data["idempotency_key"]),
        amount=int(data["amount"]),
        status=str(data["status"]),
        card_fingerprint=_fingerprint(data.get("card")),
    )


def _fingerprint(card: Any) -> str | None:
    value = card.get("fingerprint") if isinstance(card, dict) else None
    return str(value)[:64] if value else None


class ProviderClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.base = provider_url(settings)

    async def charge(
        self, idempotency_key: str, amount: int, currency: str, card_number: str | None = None
    ) -> ChargeAttempt:
        """`amount` in `currency`'s minor unit (ISO 4217), as the show prices it: no conversion."""
        body: dict[str, Any] = {"idempotency_key": idempotency_key, "amount": amount, "currency": currency}
        if card_number is not None:
            body["card_number"] = card_number
        parent = trace.traceparent()  # W3C trace context goes on to the provider when traced
        headers = {"traceparent": parent} if parent is not None else None
        try:
            resp = await self.http.post(f"{self.base}/charges", json=body, headers=headers)
        except httpx.TimeoutException:
            return ChargeAttempt("UNKNOWN", timed_out=True)
        except httpx.HTTPError:
            return ChargeAttempt("UNKNOWN")
        if resp.status_code in (200, 201):
            charge = _charge(resp.json())
            if charge.status == "FAILED":
                return ChargeAttempt("FAILED", charge)
            return ChargeAttempt("SUCCEEDED", charge)
        if resp.status_code == 402:
            return ChargeAttempt("FAILED", _charge(resp.json()))
        return ChargeAttempt("UNKNOWN")

    async def get_charge(self, idempotency_key: str) -> Charge | None:
        try:
            resp = await self.http.get(f"{self.base}/charges/{idempotency_key}")
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"payment provider did not answer ({type(exc).__name__})") from None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise ProviderUnavailable(f"payment provider answered {resp.status_code}")
        return _charge(resp.json())

    async def refund(self, charge_id: str) -> Charge:
        """Idempotent at the provider: refunding a refunded charge answers with it again."""
        try:
            resp = await self.http.post(f"{self.base}/charges/{charge_id}/refund")
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"payment provider did not answer ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise ProviderUnavailable(f"payment provider refused the refund ({resp.status_code})")
        return _charge(resp.json())
