"""Payment endpoints: thin (parse, authorize, call one service function)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from fastapi.responses import JSONResponse

from boxoffice.auth.dependencies import CurrentUser
from boxoffice.deps import RuntimeDep, SessionDep
from boxoffice.payments import service
from boxoffice.payments.schemas import PaymentOut, PaymentRequest

router = APIRouter(tags=["payments"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    202: {
        "model": PaymentOut,
        "description": "Card outcome unknown yet (PENDING); reconciliation settles it",
    },
    400: {"description": "IDEMPOTENCY_KEY_REQUIRED"},
    402: {"description": "INSUFFICIENT_BALANCE / PAYMENT_DECLINED (nothing charged)"},
    404: {"description": "RESERVATION_NOT_FOUND"},
    409: {"description": "HOLD_EXPIRED / ALREADY_PAID / PAYMENT_IN_PROGRESS / IDEMPOTENCY_IN_PROGRESS"},
    422: {"description": "Invalid request / IDEMPOTENCY_KEY_REUSED"},
    503: {"description": "PAYMENT_PROVIDER_UNAVAILABLE"},
}


@router.post(
    "/api/payments",
    status_code=201,
    response_model=PaymentOut,
    responses=_PROBLEMS,
    summary="Pay a hold from the balance or by card; confirms the reservation in the same step",
    description="Needs only your login: a live hold stays payable after its admission token expired.",
)
async def create_payment(
    body: PaymentRequest,
    claims: CurrentUser,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    result = await service.pay(
        runtime,
        user_id=claims.user_id,
        reservation_id=body.reservation_id,
        method=body.method,
        idempotency_key=idempotency_key,
    )
    return result.as_response()


@router.get("/api/payments/{payment_id}", response_model=PaymentOut, summary="One of my payments")
async def get_payment(
    payment_id: Annotated[int, Path(ge=1, le=2**62)], claims: CurrentUser, session: SessionDep
) -> dict[str, Any]:
    return await service.get_payment(session, claims.user_id, payment_id)
