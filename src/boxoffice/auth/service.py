"""Accounts and authentication: signup, login, refresh rotation, logout, profile, top-up, verification.

Services never commit: the request's unit of work (deps.SessionDep) does; top-ups are in flows.py.
Redis holds the short-lived auth state (store.py); PostgreSQL holds the accounts.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice import ratelimit
from boxoffice.auth import passwords, repository, store
from boxoffice.auth.schemas import (
    LoginRequest,
    ProfileUpdate,
    SignupRequest,
    SignupResponse,
    TokenPair,
    VerifyResponse,
    normalize_email,
)
from boxoffice.auth.tokens import (
    AccessClaims,
    InvalidToken,
    issue_access_token,
    issue_email_verification_token,
    verify_access_token,
    verify_email_verification_token,
)
from boxoffice.config import Settings, secret
from boxoffice.errors import (
    AuthRequired,
    AuthUnavailable,
    EmailTaken,
    InvalidAccessToken,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidVerificationToken,
    RefreshReused,
    TooManyAttempts,
    Unauthorized,
    UserNotFound,
)
from boxoffice.payments import ledger
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.auth")

LOGIN_WINDOW_SECONDS = 15 * 60
ROLES = ("USER", "ADMIN", "DOOR")  # DOOR: gate staff (scan tickets, nothing else)

# Refresh token = "<family>.<secret>": the family id (public, names the login) and 256 random bits.
_FAMILY_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")


@asynccontextmanager
async def _auth_store() -> AsyncIterator[None]:
    """Redis trouble on an auth path is a clean 503, never a 500."""
    try:
        yield
    except RedisError as exc:
        log.warning("auth_store_unavailable", error=type(exc).__name__)
        raise AuthUnavailable("Authentication is temporarily unavailable") from None


# --- signup / verification ---------------------------------------------------------------------


async def signup(
    session: AsyncSession, runtime: Runtime, data: SignupRequest, address: str
) -> tuple[SignupResponse, str]:
    """Create the account; returns it and the verification link to mail after the commit.

    Throttled per client address (accounts are what a seat hoarder multiplies: each holds seats)."""
    now = runtime.clock.now()
    await ratelimit.enforce(
        runtime,
        "signup",
        address,
        limit=runtime.settings.limit_signups_per_address_per_hour,
        window_seconds=3600,
        error=TooManyAttempts,
        detail="Too many new accounts from this address; try again later",
    )
    work = runtime.password_work
    async with work.slot():
        password_hash = await passwords.hash_password_async(data.password, work.hasher)
    user_id = await repository.insert_user(
        session,
        email=data.email,
        password_hash=password_hash,
        name=data.name,
        role="USER",
        phone=data.phone,
        address=data.address,
        email_verified=False,
        now=now,
    )
    if user_id is None:
        raise EmailTaken("An account with this email already exists")
    log.info("account_created", user_id=user_id)
    settings = runtime.settings
    token = issue_email_verification_token(settings, user_id=user_id, email=data.email, now=now)
    link = f"{settings.public_base_url.rstrip('/')}/api/auth/verify?token={token}"
    return SignupResponse(id=user_id, email=data.email, name=data.name, role="USER"), link


async def verify_email(session: AsyncSession, runtime: Runtime, token: str) -> VerifyResponse:
    try:
        user_id, email = verify_email_verification_token(runtime.settings, token, now=runtime.clock.now())
    except InvalidToken:
        raise InvalidVerificationToken("The verification link is invalid or expired") from None
    if not await repository.mark_email_verified(session, user_id, email, runtime.clock.now()):
        raise InvalidVerificationToken("The verification link is no longer valid")
    log.info("email_verified", user_id=user_id)
    return VerifyResponse(email=email, email_verified=True)


# --- login / refresh / logout ------------------------------------------------------------------


def _new_refresh_token(family: str | None = None) -> tuple[str, str, str]:
    """(token, family, sha256 of the token)."""
    family = family or secrets.token_urlsafe(16)
    token = f"{family}.{secrets.token_urlsafe(32)}"
    return token, family, store.token_hash(token)


def _pair(runtime: Runtime, *, user_id: int, role: str, refresh_token: str, family: str) -> TokenPair:
    access, _ = issue_access_token(
        runtime.settings, user_id=user_id, role=role, now=runtime.clock.now(), session_id=family
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh_token,
        token_type="bearer",  # noqa: S106 - the OAuth token type
        expires_in=runtime.settings.access_token_ttl_seconds,
    )


def _invalid_credentials() -> Unauthorized:
    return InvalidCredentials("Wrong email or password")


def _login_subjects(email: str, address: str) -> tuple[str, str]:
    """The failure counters of one attempt: its address, and its account from that address."""
    return f"addr:{address}", f"acct:{email}|{address}"


async def login(session: AsyncSession, runtime: Runtime, data: LoginRequest, address: str) -> TokenPair:
    """Same answer and similar time for an unknown email and a wrong password.

    Every front door passes the client's real address (the peer, or the trusted gateway's
    X-Forwarded-For). Only FAILURES are limited: per address (spraying many accounts) and per
    account and address (guessing one password); an attempt is counted before its password is
    checked (concurrent guesses cannot slip past) and given back when it was not a failure. So a
    crowd behind one NAT that types its passwords right is never refused, and an attacker's
    failures never lock the owner out from another address. Floods are bounded by the argon2 slots."""
    email = normalize_email(data.email)
    settings = runtime.settings
    work = runtime.password_work
    by_address, by_account = _login_subjects(email, address)
    counted: list[str] = []
    failed = False
    try:
        if settings.limit_failed_logins_per_address > 0:
            async with _auth_store():
                gate = await store.register_login_attempt(
                    runtime.redis,
                    by_address,
                    limit=settings.limit_failed_logins_per_address,
                    window_seconds=LOGIN_WINDOW_SECONDS,
                )
            if not gate.allowed:
                runtime.metrics.logins.labels("throttled").inc()
                runtime.metrics.rate_limited.labels("login").inc()
                raise TooManyAttempts(
                    "Too many failed logins from this address; try again later",
                    headers={"Retry-After": str(gate.retry_after_seconds)},
                    retry_after_seconds=gate.retry_after_seconds,
                )
            counted.append(by_address)
        async with _auth_store():
            gate = await store.register_login_attempt(
                runtime.redis,
                by_account,
                limit=settings.limit_failed_logins_per_account_and_address,
                window_seconds=LOGIN_WINDOW_SECONDS,
            )
        if not gate.allowed:
            runtime.metrics.logins.labels("throttled").inc()
            raise TooManyAttempts(
                "Too many failed logins for this account from this address; try again later",
                headers={"Retry-After": str(gate.retry_after_seconds)},
                retry_after_seconds=gate.retry_after_seconds,
            )
        counted.append(by_account)
        creds = await repository.credentials_by_email(session, email)
        async with work.slot():
            ok = await passwords.verify_password_async(
                creds.password_hash if creds else None, data.password, work.hasher
            )
        if creds is None or not ok:
            failed = True
            runtime.metrics.logins.labels("failure").inc()
            log.info("login_failed", user_id=creds.id if creds else None)
            raise _invalid_credentials()
    finally:
        if not failed and counted:  # a success or a refusal: not a failure, give the counts back
            with contextlib.suppress(RedisError):
                for subject in counted:
                    await store.refund_login_attempt(runtime.redis, subject)
    if passwords.needs_rehash(creds.password_hash, work.hasher):
        async with work.slot():
            new_hash = await passwords.hash_password_async(data.password, work.hasher)
        await repository.update_password_hash(session, creds.id, new_hash, runtime.clock.now())
    token, family, digest = _new_refresh_token()
    ttl = runtime.settings.refresh_token_ttl_seconds
    async with _auth_store():
        await store.clear_login_attempts(runtime.redis, by_account)
        await store.create_refresh_family(
            runtime.redis,
            family,
            user_id=creds.id,
            token_sha256=digest,
            now_ts=int(runtime.clock.now().timestamp()),
            ttl_seconds=ttl,
        )
    runtime.metrics.logins.labels("success").inc()
    log.info("login_succeeded", user_id=creds.id)
    return _pair(runtime, user_id=creds.id, role=creds.role, refresh_token=token, family=family)


async def refresh(session: AsyncSession, runtime: Runtime, refresh_token: str) -> TokenPair:
    """Rotate: a new pair; the presented token stops working; replaying a rotated one revokes the login."""
    invalid = InvalidRefreshToken("Invalid or expired refresh token")
    family, sep, _ = refresh_token.partition(".")
    if not sep or not _FAMILY_RE.match(family):
        raise invalid
    new_token, _, new_digest = _new_refresh_token(family)
    async with _auth_store():
        result = await store.rotate_refresh_token(
            runtime.redis,
            family,
            presented_sha256=store.token_hash(refresh_token),
            new_sha256=new_digest,
            now_ts=int(runtime.clock.now().timestamp()),
            ttl_seconds=runtime.settings.refresh_token_ttl_seconds,
        )
    if result.outcome == "REUSED":
        log.warning("refresh_token_reused", user_id=result.user_id)
        # The login is revoked: its access tokens (the thief's or the owner's) stop now too.
        if result.user_id is not None:
            async with _auth_store():
                await store.end_session(
                    runtime.redis, result.user_id, family, runtime.settings.access_token_ttl_seconds
                )
        raise RefreshReused(
            "This refresh token was already used; the login has been revoked, sign in again",
        )
    if result.outcome != "OK" or result.user_id is None:
        raise invalid
    role = await repository.live_role(session, result.user_id)
    if role is None:  # the account was deleted since this login
        async with _auth_store():
            await store.delete_refresh_family(runtime.redis, family)
        raise invalid
    return _pair(runtime, user_id=result.user_id, role=role, refresh_token=new_token, family=family)


async def logout(runtime: Runtime, claims: AccessClaims) -> None:
    """Delete the login's refresh tokens and refuse this access token until its expiry."""
    ttl = claims.expires_at - int(runtime.clock.now().timestamp())
    async with _auth_store():
        await store.deny_access_token(runtime.redis, claims.user_id, claims.jti, ttl)
        if claims.session_id is not None:
            await store.delete_refresh_family(runtime.redis, claims.session_id)
            # Every access token of this login, not only the one presented (refreshes made more).
            await store.end_session(
                runtime.redis, claims.user_id, claims.session_id, runtime.settings.access_token_ttl_seconds
            )
    log.info("logout", user_id=claims.user_id)


async def end_every_session(runtime: Runtime, user_id: int) -> None:
    """Sign the user out everywhere (a password reset): every login's refresh token is gone and
    its access tokens are refused until they would have expired."""
    async with _auth_store():
        ended = await store.end_every_session(
            runtime.redis, user_id, runtime.settings.access_token_ttl_seconds
        )
    log.info("every_session_ended", user_id=user_id, logins=ended)


# --- profile -----------------------------------------------------------------------------------


async def choose_locale(session: AsyncSession, user_id: int, locale: str) -> None:
    """The fan's language ("ko" / "en", kit/i18n.py): pages and mails use it."""
    await repository.set_locale(session, user_id, locale)


async def account_locale(session: AsyncSession, user_id: int) -> str | None:
    return await repository.locale(session, user_id)


async def get_profile(session: AsyncSession, user_id: int) -> dict[str, Any]:
    found = await repository.profile(session, user_id)
    if found is None:
        raise InvalidAccessToken("This account no longer exists")
    return found


async def update_profile(
    session: AsyncSession, runtime: Runtime, user_id: int, data: ProfileUpdate
) -> dict[str, Any]:
    values = data.model_dump(include=data.model_fields_set)
    if not values:
        return await get_profile(session, user_id)
    updated = await repository.update_profile(session, user_id, values, runtime.clock.now())
    if updated is None:
        raise InvalidAccessToken("This account no longer exists")
    return updated


async def delete_account(session: AsyncSession, runtime: Runtime, claims: AccessClaims) -> None:
    """Soft delete. Every access token of the user is refused from now on (a Redis marker that
    outlives them), later logins find no live account, refreshes find no live account."""
    if not await repository.soft_delete(session, claims.user_id, runtime.clock.now()):
        raise InvalidAccessToken("This account no longer exists")
    # Before the commit: if Redis cannot record it, nothing is deleted (503) rather than
    # leaving tokens of a deleted account working.
    async with _auth_store():
        await store.revoke_user(runtime.redis, claims.user_id, runtime.settings.access_token_ttl_seconds + 60)
        if claims.session_id is not None:
            await store.delete_refresh_family(runtime.redis, claims.session_id)
    log.info("account_deleted", user_id=claims.user_id)


async def admin_get_user(session: AsyncSession, user_id: int) -> dict[str, Any]:
    found = await repository.profile(session, user_id, include_deleted=True)
    if found is None:
        raise UserNotFound("No such user")
    return found


# --- accounts created by the operator (demo seeding, admin bootstrap) --------------------------


async def ensure_account(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    name: str,
    role: str = "USER",
    initial_balance: int = 0,
) -> int:
    """Create the account unless a live user has this email; returns the user id either way.

    Same path as signup (argon2 hash) plus an initial balance through the ledger (TOPUP). Accounts
    created by the operator count as verified. `settings` is accepted for the demo's call shape.
    """
    del settings
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if initial_balance < 0:
        raise ValueError("initial_balance must be >= 0")
    email = normalize_email(email)
    existing = await repository.live_user_id_by_email(session, email)
    if existing is not None:
        return existing
    user_id = await repository.insert_user(
        session,
        email=email,
        password_hash=await passwords.hash_password_async(password),
        name=name,
        role=role,
        phone=None,
        address=None,
        email_verified=True,
        # A record timestamp only (no rule depends on it); this path has no runtime clock.
        now=datetime.now(UTC),
    )
    if user_id is None:  # created concurrently by another seeder
        raced = await repository.live_user_id_by_email(session, email)
        if raced is None:
            raise RuntimeError("account vanished while being created")
        return raced
    if initial_balance > 0:
        await ledger.credit(session, user_id, initial_balance, "TOPUP", "initial-balance")
    return user_id


async def ensure_demo_accounts(session: AsyncSession, settings: Settings) -> dict[str, int]:
    """The demo admin and fan, from settings (BOXOFFICE_ADMIN_* / BOXOFFICE_DEMO_FAN_*)."""
    admin = await ensure_account(
        session,
        settings,
        email=settings.admin_email,
        password=secret(settings.admin_password),
        name="Boxoffice Admin",
        role="ADMIN",
    )
    fan = await ensure_account(
        session,
        settings,
        email=settings.demo_fan_email,
        password=settings.demo_fan_password.get_secret_value(),
        name="Demo Fan",
        initial_balance=settings.demo_fan_balance,
    )
    return {"admin": admin, "fan": fan}


# ---------------------------------------------------------------- the gate of every front door
# The HTTP dependency (CurrentUser), the lean routes and the gRPC methods all authenticate here.


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, for routes without FastAPI's DI."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def authenticate_token(runtime: Runtime, token: str | None, *, recent_ok: bool = False) -> AccessClaims:
    """The whole check behind CurrentUser: signature and expiry, then the deny-list.

    recent_ok: a deny-list answer this process got for the token within the last second will do
    (queue polls only: a waiting fan's poll then costs no Redis round trip; a logout reaches polls
    within a second, every other route at once)."""
    claims = verified_claims(runtime, token)
    await access_check(runtime, claims, recent_ok=recent_ok)
    return claims


def verified_claims(runtime: Runtime, token: str | None) -> AccessClaims:
    """The first half of authenticate_token: the signature and expiry (401), no Redis."""
    if not token:
        raise AuthRequired("Missing bearer token")
    return _verified(runtime, token)


def access_check(runtime: Runtime, claims: AccessClaims, *, recent_ok: bool = False) -> Awaitable[None]:
    """The second half: the deny-list's EXISTS, written now (inside the caller's
    MuxRedis.one_write, with the route's own first commands); awaiting it raises 401 for a revoked
    token. Whoever calls this awaits it before the request changes anything."""
    if recent_ok and runtime.recently_allowed.get(claims.jti):
        return _allowed()
    return _settle_access(
        runtime,
        claims,
        store.issue_access_check(runtime.hot_redis, claims.user_id, claims.jti, claims.session_id),
    )


async def _allowed() -> None:
    return None


async def _settle_access(runtime: Runtime, claims: AccessClaims, reply: Awaitable[int]) -> None:
    try:
        denied = await reply > 0
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("auth_denylist_unavailable", error=type(exc).__name__, reason=str(exc)[:200])
        # Redis down: fail closed for the deny-list would lock everyone out; the token is
        # short-lived and signed, so we accept it and log. Logout during a Redis outage is the gap.
        # Only a backend failure opens this door: any other exception is a bug and propagates.
        denied = False
    if denied:
        raise InvalidAccessToken("Access token was revoked")
    runtime.recently_allowed.put(claims.jti, True)


def _verified(runtime: Runtime, token: str) -> AccessClaims:
    """Signature checked once per token and process for its lifetime (the access-token cache keys
    on the exact string and holds access claims only); the expiry is checked on every request
    against the injected clock, the deny-list by the caller."""
    now = runtime.clock.now()
    claims = runtime.access_tokens.get(token)
    if claims is None:
        try:
            claims = verify_access_token(runtime.settings, token, now=now)
        except InvalidToken:
            raise InvalidAccessToken("Invalid or expired access token") from None
        # Kept for the token's lifetime (its signature cannot change; the expiry and the deny-list
        # are checked on every use).
        runtime.access_tokens.put(token, claims, max(1, claims.expires_at - int(now.timestamp())))
    elif claims.expires_at <= int(now.timestamp()):
        raise InvalidAccessToken("Invalid or expired access token")
    return claims
