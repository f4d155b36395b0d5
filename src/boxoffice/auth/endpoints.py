"""Accounts and auth API: parse, authorize, call one service function."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from boxoffice import errors as e
from boxoffice import ratelimit
from boxoffice.auth import flows, service
from boxoffice.auth.dependencies import AdminUser, CurrentUser
from boxoffice.auth.schemas import (
    BalanceResponse,
    LoginRequest,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    Profile,
    ProfileUpdate,
    RefreshRequest,
    SignupRequest,
    SignupResponse,
    TokenPair,
    TopUpRequest,
    VerifyResponse,
    normalize_email,
)
from boxoffice.http.deps import IdempotencyKey, PathId, RuntimeDep, SessionDep, respond
from boxoffice.http.peer import client_address
from boxoffice.http.problems import problems
from boxoffice.kit.inputs import Text
from boxoffice.mail import flows as mail_flows
from boxoffice.mail.smtp import send_verification

router = APIRouter()


@router.post(
    "/api/auth/signup",
    status_code=201,
    response_model=SignupResponse,
    tags=["auth"],
    summary="Create an account",
    responses=problems(e.EmailTaken, e.LoginBusy, e.TooManyAttempts),
)
async def signup(
    body: SignupRequest,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
) -> SignupResponse:
    created, link = await service.signup(session, runtime, body, client_address(request, runtime.settings))
    # Background tasks run after the response, i.e. after the unit of work has committed.
    background.add_task(send_verification, runtime.settings, to=created.email, name=created.name, link=link)
    return created


@router.get(
    "/api/auth/verify",
    response_model=VerifyResponse,
    tags=["auth"],
    summary="Confirm an email address (the link sent at signup)",
    responses=problems(e.InvalidVerificationToken),
)
async def verify(
    token: Annotated[Text, Query(min_length=1, max_length=2048)], session: SessionDep, runtime: RuntimeDep
) -> VerifyResponse:
    return await service.verify_email(session, runtime, token)


@router.post(
    "/api/auth/login",
    response_model=TokenPair,
    tags=["auth"],
    summary="Exchange email and password for an access and a refresh token",
    responses=problems(e.InvalidCredentials, e.TooManyAttempts, e.LoginBusy, e.AuthUnavailable),
)
async def login(body: LoginRequest, request: Request, session: SessionDep, runtime: RuntimeDep) -> TokenPair:
    return await service.login(session, runtime, body, client_address(request, runtime.settings))


@router.post(
    "/api/auth/refresh",
    response_model=TokenPair,
    tags=["auth"],
    summary="Rotate a refresh token into a new pair",
    responses=problems(e.InvalidRefreshToken, e.RefreshReused, e.AuthUnavailable),
)
async def refresh(body: RefreshRequest, session: SessionDep, runtime: RuntimeDep) -> TokenPair:
    return await service.refresh(session, runtime, body.refresh_token)


@router.post(
    "/api/auth/logout",
    status_code=204,
    tags=["auth"],
    summary="End this login",
    responses=problems(e.AuthUnavailable),
)
async def logout(claims: CurrentUser, runtime: RuntimeDep) -> Response:
    await service.logout(runtime, claims)
    return Response(status_code=204)


@router.get("/api/users/me", response_model=Profile, tags=["users"], summary="My profile")
async def me(claims: CurrentUser, session: SessionDep) -> dict[str, Any]:
    return await service.get_profile(session, claims.user_id)


@router.patch("/api/users/me", response_model=Profile, tags=["users"], summary="Update my profile")
async def update_me(
    body: ProfileUpdate, claims: CurrentUser, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return await service.update_profile(session, runtime, claims.user_id, body)


@router.delete(
    "/api/users/me",
    status_code=204,
    tags=["users"],
    summary="Delete my account",
    responses=problems(e.AuthUnavailable),
)
async def delete_me(claims: CurrentUser, session: SessionDep, runtime: RuntimeDep) -> Response:
    await service.delete_account(session, runtime, claims)
    return Response(status_code=204)


@router.post(
    "/api/users/me/balance",
    response_model=BalanceResponse,
    tags=["users"],
    summary="Charge my balance (Idempotency-Key required)",
    responses=problems(e.BalanceLimit, e.RateLimited, e.UserNotFound, e.TopUpDisabled),
)
async def top_up(
    body: TopUpRequest,
    claims: CurrentUser,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
) -> Response:
    result = await flows.top_up(
        runtime, user_id=claims.user_id, amount=body.amount, idempotency_key=idempotency_key
    )
    return respond(result)


@router.get(
    "/api/admin/users/{user_id}",
    response_model=Profile,
    tags=["admin"],
    summary="A user's profile (administrators)",
    responses=problems(e.UserNotFound),
)
async def admin_get_user(user_id: PathId, admin: AdminUser, session: SessionDep) -> dict[str, Any]:
    return await service.admin_get_user(session, user_id)


@router.post(
    "/api/auth/password-reset",
    status_code=202,
    response_model=PasswordResetAccepted,
    tags=["auth"],
    summary="Mail a password-reset link (the same answer whether the address has an account or not)",
    responses=problems(e.RateLimited),
)
async def request_password_reset(
    body: PasswordResetRequest, request: Request, runtime: RuntimeDep
) -> PasswordResetAccepted:
    address = client_address(request, runtime.settings) or "unknown"
    await ratelimit.enforce(  # each request may send a mail: throttled per address as signups are
        runtime,
        "password-reset",
        address,
        limit=runtime.settings.limit_signups_per_address_per_hour,
        window_seconds=3600,
    )
    await mail_flows.request_password_reset(runtime, normalize_email(body.email))
    return PasswordResetAccepted()


@router.post(
    "/api/auth/password-reset/confirm",
    status_code=204,
    response_class=Response,
    tags=["auth"],
    summary="Choose a new password with the link's token (signed, short-lived, works once)",
    responses=problems(e.InvalidResetToken),
)
async def confirm_password_reset(body: PasswordResetConfirm, runtime: RuntimeDep) -> Response:
    await flows.reset_password(runtime, token=body.token, password=body.password)
    return Response(status_code=204)
