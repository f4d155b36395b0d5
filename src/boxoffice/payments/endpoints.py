"""Payment endpoints: thin (parse, authorize, call one flow or service function).

Also DELETE /api/reservations/{id}: cancelling a paid reservation is a refund (decided here,
downstream of booking)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from boxoffice import errors as e
from boxoffice.auth.dependencies import CurrentUser
from boxoffice.booking.endpoints import RESERVATION, RESERVATION_PROBLEMS
from boxoffice.booking.schemas import ReservationOut
from boxoffice.db.idempotency import MAX_KEY_LENGTH
from boxoffice.http import hot as lean
from boxoffice.http.deps import PathId, RuntimeDep, SessionDep, respond
from boxoffice.http.problems import problems
from boxoffice.payments import flows, service
from boxoffice.payments.provider import ProviderUnavailable
from boxoffice.payments.schemas import PaymentOut, PaymentRequest

router = APIRouter(tags=["payments"])


async def _pay(hot: lean.HotInput) -> Response:
    body: PaymentRequest = hot.body
    result = await flows.pay(
        hot.runtime,
        user_id=hot.claims.user_id,
        reservation_id=body.reservation_id,
        method=body.method,
        idempotency_key=hot.headers["Idempotency-Key"],
        card_number=body.card_number,
        first=hot.first,
    )
    return respond(result)


def _pay_first_round(hot: lean.HotInput) -> flows.PayFirstRound:
    body: PaymentRequest = hot.body
    return flows.pay_first_round(hot.runtime, hot.claims.user_id, body.reservation_id, body.method)


# Paying is the other half of a flash sale's buying, and FastAPI's dependency solving was ~18% of a
# balance payment's CPU: a lean route (see boxoffice.http.hot), declared once here.
PAY = lean.HotRoute(
    "/api/payments",
    "POST",
    _pay,
    response_model=PaymentOut,
    status_code=201,
    summary="Pay a hold from the balance or by card; confirms the reservation in the same step",
    description="Needs only your login: a live hold stays payable after its admission token expired.",
    tags=["payments"],
    body=PaymentRequest,
    first_round=_pay_first_round,
    headers=(
        lean.Header(
            "Idempotency-Key",
            MAX_KEY_LENGTH,
            "Required; the same key with the same body replays the first answer",
            required=True,
        ),
    ),
    errors=(
        e.InsufficientBalance,
        e.CurrencyMismatch,
        e.PaymentDeclined,
        e.ReservationNotFound,
        e.HoldExpired,
        e.AlreadyPaid,
        e.PaymentInProgress,
        e.RateLimited,
        e.UserNotFound,
        ProviderUnavailable,
        e.IdempotencyKeyRequired,
        e.IdempotencyKeyInvalid,
        e.IdempotencyKeyReused,
        e.IdempotencyInProgress,
    ),
    responses={
        202: {
            "model": PaymentOut,
            "description": "Card outcome unknown yet (PENDING); reconciliation settles it",
        }
    },
)
hot_routes = [PAY]
router.routes.append(PAY.documented())


@router.get(
    "/api/payments/{payment_id}",
    response_model=PaymentOut,
    summary="One of my payments",
    responses=problems(e.PaymentNotFound),
)
async def get_payment(payment_id: PathId, claims: CurrentUser, session: SessionDep) -> dict[str, Any]:
    return await service.get_payment(session, claims.user_id, payment_id)


@router.delete(
    RESERVATION,
    tags=["reservations"],
    response_model=ReservationOut,
    responses=problems(
        *RESERVATION_PROBLEMS,
        e.ReservationExpired,
        e.RefundClosed,
        ProviderUnavailable,
    ),
    summary="Cancel a hold, or refund a paid reservation (until 24 h before the show)",
)
async def cancel_reservation(
    reservation_id: PathId, claims: CurrentUser, runtime: RuntimeDep
) -> dict[str, Any]:
    return await flows.cancel(runtime, user_id=claims.user_id, reservation_id=reservation_id)
