"""Domain errors: pure types with a stable machine `code` and an HTTP status (no web framework).

Raise a DomainError subclass (or DomainError itself with a code) from any layer; each front door
renders it once (`http_errors.install_error_handlers` for the JSON API).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

_BY_CODE: dict[str, type[DomainError]] = {}


class DomainError(Exception):
    """Base of every error the API returns. One subclass per stable `code` (registered here, so
    `error_class(code)` finds it and the OpenAPI error docs are generated from the classes)."""

    status: int = 400
    code: str = "BAD_REQUEST"
    title: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if _BY_CODE.setdefault(cls.code, cls) is not cls:
            raise TypeError(f"two error classes for the code {cls.code}")

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.detail = detail or self.title or HTTPStatus(self.status).phrase
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)


class BadRequest(DomainError):
    status, code = 400, "BAD_REQUEST"


class Unauthorized(DomainError):
    status, code = 401, "UNAUTHORIZED"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(DomainError):
    status, code = 403, "FORBIDDEN"


class NotFound(DomainError):
    status, code = 404, "NOT_FOUND"


class Conflict(DomainError):
    status, code = 409, "CONFLICT"


class Unprocessable(DomainError):
    status, code = 422, "VALIDATION_ERROR"


class PaymentRequired(DomainError):
    status, code = 402, "PAYMENT_REQUIRED"


class TooManyRequests(DomainError):
    status, code = 429, "TOO_MANY_REQUESTS"


class ServiceUnavailable(DomainError):
    status, code = 503, "SERVICE_UNAVAILABLE"


def error_class(code: str) -> type[DomainError]:
    """The class of a stable code (KeyError for a code nobody declared)."""
    return _BY_CODE[code]


def all_error_classes() -> list[type[DomainError]]:
    return sorted(_BY_CODE.values(), key=lambda cls: (cls.status, cls.code))


# One class per stable code (the OpenAPI error docs are generated from these).


class IdempotencyKeyInvalid(BadRequest):
    code = "IDEMPOTENCY_KEY_INVALID"


class IdempotencyKeyRequired(BadRequest):
    code = "IDEMPOTENCY_KEY_REQUIRED"


class QueueTicketRefused(BadRequest):
    code = "QUEUE_TICKET_INVALID"


class InvalidResetToken(BadRequest):
    code = "INVALID_RESET_TOKEN"


class InvalidVerificationToken(BadRequest):
    code = "INVALID_VERIFICATION_TOKEN"


class QueueChallengeInvalid(BadRequest):
    code = "QUEUE_CHALLENGE_INVALID"  # unreadable, not signed by us, or the number is wrong


class QueueChallengeReplayed(Conflict):
    code = "QUEUE_CHALLENGE_REPLAYED"  # a solution already spent on a join


class QueueChallengeExpired(Forbidden):
    code = "QUEUE_CHALLENGE_EXPIRED"


class QueueChallengeForeign(Forbidden):
    code = "QUEUE_CHALLENGE_MISMATCH"  # issued for another show or another account


class QueueChallengeRequired(DomainError):
    status, code = 428, "QUEUE_CHALLENGE_REQUIRED"


class WaitlistNotOpen(Conflict):
    code = "WAITLIST_NOT_OPEN"  # the show is not sold out (or its sale is closed): buy instead


class TicketLimitReached(Conflict):
    code = "TICKET_LIMIT_REACHED"  # the per-fan limit of the show or the concert


class AlreadyPaid(Conflict):
    code = "ALREADY_PAID"


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


class HoldExists(Conflict):
    code = "HOLD_EXISTS"


class HoldExpired(Conflict):
    code = "HOLD_EXPIRED"


class IdempotencyInProgress(Conflict):
    code = "IDEMPOTENCY_IN_PROGRESS"


class PaymentInProgress(Conflict):
    code = "PAYMENT_IN_PROGRESS"


class RefundClosed(Conflict):
    code = "REFUND_CLOSED"


class ReservationExpired(Conflict):
    code = "RESERVATION_EXPIRED"


class SaleClosed(Conflict):
    code = "SALE_CLOSED"


class SaleNotOpen(Conflict):
    code = "SALE_NOT_OPEN"


class SeatsTaken(Conflict):
    code = "SEATS_TAKEN"


class SeatsCoolingDown(SeatsTaken):
    """Seats the same fan let go of a moment ago (the re-hold cool-down); free for everyone else."""

    code = "SEATS_COOLING_DOWN"


class NoAdjacentSeats(Conflict):
    code = "NO_ADJACENT_SEATS"


class SaleStarted(Conflict):
    code = "SALE_STARTED"


class ConcertHasLiveShows(Conflict):
    code = "CONCERT_HAS_LIVE_SHOWS"


class NotCancellable(Conflict):
    code = "NOT_CANCELLABLE"


class ShowHasBookings(Conflict):
    code = "SHOW_HAS_BOOKINGS"


class SoldOut(Conflict):
    code = "SOLD_OUT"


class QueueTokenForeign(Forbidden):
    code = "QUEUE_TOKEN_MISMATCH"


class EmailNotVerified(Forbidden):
    code = "EMAIL_NOT_VERIFIED"


class TopUpDisabled(Forbidden):
    code = "TOPUP_DISABLED"


class CsrfFailed(Forbidden):
    code = "CSRF_FAILED"


class QueueTicketForeign(Forbidden):
    code = "QUEUE_TICKET_MISMATCH"


class ConcertNotFound(NotFound):
    code = "CONCERT_NOT_FOUND"


class PaymentNotFound(NotFound):
    code = "PAYMENT_NOT_FOUND"


class ReservationNotFound(NotFound):
    code = "RESERVATION_NOT_FOUND"


class ShowNotFound(NotFound):
    code = "SHOW_NOT_FOUND"


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"


class VenueNotFound(NotFound):
    code = "VENUE_NOT_FOUND"


class TicketNotFound(NotFound):
    code = "TICKET_NOT_FOUND"


class DoorStaffOnly(Forbidden):
    code = "DOOR_ROLE_REQUIRED"


class ReentryNotAllowed(Conflict):
    code = "REENTRY_NOT_ALLOWED"


class InsufficientBalance(PaymentRequired):
    code = "INSUFFICIENT_BALANCE"


class CurrencyMismatch(Conflict):
    """A balance pays only for shows in its own currency (no silent conversion)."""

    code = "CURRENCY_MISMATCH"


class PaymentDeclined(PaymentRequired):
    code = "PAYMENT_DECLINED"


class AuthUnavailable(ServiceUnavailable):
    code = "AUTH_UNAVAILABLE"


class TooManyAttempts(TooManyRequests):
    code = "TOO_MANY_ATTEMPTS"


class QueueBusy(TooManyRequests):
    code = "QUEUE_BUSY"  # waiting-room traffic shed under overload (overload.py), with Retry-After


class AuthRequired(Unauthorized):
    code = "AUTH_REQUIRED"


class InvalidCredentials(Unauthorized):
    code = "INVALID_CREDENTIALS"


class InvalidRefreshToken(Unauthorized):
    code = "INVALID_REFRESH_TOKEN"


class InvalidAccessToken(Unauthorized):
    code = "INVALID_TOKEN"


class QueueTokenRefused(Unauthorized):
    code = "QUEUE_TOKEN_INVALID"


class QueueTokenRequired(Unauthorized):
    code = "QUEUE_TOKEN_REQUIRED"


class RefreshReused(Unauthorized):
    code = "REFRESH_REUSED"


class DuplicateSeats(Unprocessable):
    code = "DUPLICATE_SEATS"


class IdempotencyKeyReused(Unprocessable):
    code = "IDEMPOTENCY_KEY_REUSED"


class InvalidLayout(Unprocessable):
    code = "INVALID_LAYOUT"


class InvalidShow(Unprocessable):
    code = "INVALID_SHOW"


class SeatsNotInShow(Unprocessable):
    code = "SEATS_NOT_IN_SHOW"


class TooManySeats(Unprocessable):
    code = "TOO_MANY_SEATS"


class UnknownSection(Unprocessable):
    code = "UNKNOWN_SECTION"


# Hardening (issue 16): limits, outages, operations.


class BalanceLimit(Unprocessable):
    code = "BALANCE_LIMIT"


class RateLimited(TooManyRequests):
    code = "RATE_LIMITED"


class LoginBusy(TooManyRequests):
    code = "LOGIN_BUSY"


class MetricsTokenRequired(Unauthorized):
    code = "METRICS_TOKEN_REQUIRED"


class BackendUnavailable(ServiceUnavailable):
    """PostgreSQL or Redis does not answer: retry shortly (gRPC: UNAVAILABLE)."""

    code = "BACKEND_UNAVAILABLE"
    grpc_status = "UNAVAILABLE"


class StreamLimit(TooManyRequests):
    code = "STREAM_LIMIT"


# Answered by the HTTP layer itself (the body limit, the lean routes' content type, /readyz).


class BodyTooLarge(DomainError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(DomainError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


class NotReady(ServiceUnavailable):
    code = "NOT_READY"
