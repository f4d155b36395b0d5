import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WaitlistState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WAITLIST_STATE_UNSPECIFIED: _ClassVar[WaitlistState]
    WAITLIST_STATE_NOT_ON_WAITLIST: _ClassVar[WaitlistState]
    WAITLIST_STATE_WAITING: _ClassVar[WaitlistState]
    WAITLIST_STATE_OFFERED: _ClassVar[WaitlistState]
    WAITLIST_STATE_TAKEN: _ClassVar[WaitlistState]
    WAITLIST_STATE_LAPSED: _ClassVar[WaitlistState]
    WAITLIST_STATE_LEFT: _ClassVar[WaitlistState]
    WAITLIST_STATE_SKIPPED: _ClassVar[WaitlistState]

class QueueState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUEUE_STATE_UNSPECIFIED: _ClassVar[QueueState]
    QUEUE_STATE_WAITING: _ClassVar[QueueState]
    QUEUE_STATE_READY: _ClassVar[QueueState]
    QUEUE_STATE_NOT_IN_QUEUE: _ClassVar[QueueState]
    QUEUE_STATE_SOLD_OUT: _ClassVar[QueueState]
    QUEUE_STATE_LAST_SEATS_HELD: _ClassVar[QueueState]

class SeatStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEAT_STATUS_UNSPECIFIED: _ClassVar[SeatStatus]
    SEAT_STATUS_AVAILABLE: _ClassVar[SeatStatus]
    SEAT_STATUS_TEMP_RESERVED: _ClassVar[SeatStatus]
    SEAT_STATUS_RESERVED: _ClassVar[SeatStatus]

class ReservationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_STATUS_UNSPECIFIED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_TEMP_RESERVED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_RESERVED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_EXPIRED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_CANCELLED: _ClassVar[ReservationStatus]

class PaymentMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_METHOD_UNSPECIFIED: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_BALANCE: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_CARD: _ClassVar[PaymentMethod]

class PaymentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_STATUS_UNSPECIFIED: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_PENDING: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_SUCCEEDED: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_FAILED: _ClassVar[PaymentStatus]
    PAYMENT_STATUS_REFUNDED: _ClassVar[PaymentStatus]

class TicketStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TICKET_STATUS_UNSPECIFIED: _ClassVar[TicketStatus]
    TICKET_STATUS_VALID: _ClassVar[TicketStatus]
    TICKET_STATUS_USED: _ClassVar[TicketStatus]
    TICKET_STATUS_VOID: _ClassVar[TicketStatus]

class ScanResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCAN_RESULT_UNSPECIFIED: _ClassVar[ScanResult]
    SCAN_RESULT_VALID: _ClassVar[ScanResult]
    SCAN_RESULT_ALREADY_USED: _ClassVar[ScanResult]
    SCAN_RESULT_VOID: _ClassVar[ScanResult]
    SCAN_RESULT_WRONG_SHOW: _ClassVar[ScanResult]
    SCAN_RESULT_NOT_A_TICKET: _ClassVar[ScanResult]
    SCAN_RESULT_CONFLICT: _ClassVar[ScanResult]
WAITLIST_STATE_UNSPECIFIED: WaitlistState
WAITLIST_STATE_NOT_ON_WAITLIST: WaitlistState
WAITLIST_STATE_WAITING: WaitlistState
WAITLIST_STATE_OFFERED: WaitlistState
WAITLIST_STATE_TAKEN: WaitlistState
WAITLIST_STATE_LAPSED: WaitlistState
WAITLIST_STATE_LEFT: WaitlistState
WAITLIST_STATE_SKIPPED: WaitlistState
QUEUE_STATE_UNSPECIFIED: QueueState
QUEUE_STATE_WAITING: QueueState
QUEUE_STATE_READY: QueueState
QUEUE_STATE_NOT_IN_QUEUE: QueueState
QUEUE_STATE_SOLD_OUT: QueueState
QUEUE_STATE_LAST_SEATS_HELD: QueueState
SEAT_STATUS_UNSPECIFIED: SeatStatus
SEAT_STATUS_AVAILABLE: SeatStatus
SEAT_STATUS_TEMP_RESERVED: SeatStatus
SEAT_STATUS_RESERVED: SeatStatus
RESERVATION_STATUS_UNSPECIFIED: ReservationStatus
RESERVATION_STATUS_TEMP_RESERVED: ReservationStatus
RESERVATION_STATUS_RESERVED: ReservationStatus
RESERVATION_STATUS_EXPIRED: ReservationStatus
RESERVATION_STATUS_CANCELLED: ReservationStatus
PAYMENT_METHOD_UNSPECIFIED: PaymentMethod
PAYMENT_METHOD_BALANCE: PaymentMethod
PAYMENT_METHOD_CARD: PaymentMethod
PAYMENT_STATUS_UNSPECIFIED: PaymentStatus
PAYMENT_STATUS_PENDING: PaymentStatus
PAYMENT_STATUS_SUCCEEDED: PaymentStatus
PAYMENT_STATUS_FAILED: PaymentStatus
PAYMENT_STATUS_REFUNDED: PaymentStatus
TICKET_STATUS_UNSPECIFIED: TicketStatus
TICKET_STATUS_VALID: TicketStatus
TICKET_STATUS_USED: TicketStatus
TICKET_STATUS_VOID: TicketStatus
SCAN_RESULT_UNSPECIFIED: ScanResult
SCAN_RESULT_VALID: ScanResult
SCAN_RESULT_ALREADY_USED: ScanResult
SCAN_RESULT_VOID: ScanResult
SCAN_RESULT_WRONG_SHOW: ScanResult
SCAN_RESULT_NOT_A_TICKET: ScanResult
SCAN_RESULT_CONFLICT: ScanResult

class QueueRequest(_message.Message):
    __slots__ = ("concert_id", "show_id")
    CONCERT_ID_FIELD_NUMBER: _ClassVar[int]
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    concert_id: int
    show_id: int
    def __init__(self, concert_id: _Optional[int] = ..., show_id: _Optional[int] = ...) -> None: ...

class WaitlistRequest(_message.Message):
    __slots__ = ("show_id",)
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    show_id: int
    def __init__(self, show_id: _Optional[int] = ...) -> None: ...

class WaitlistEntry(_message.Message):
    __slots__ = ("show_id", "status", "position", "reservation_id", "offer_expires_at")
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    show_id: int
    status: WaitlistState
    position: int
    reservation_id: int
    offer_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, show_id: _Optional[int] = ..., status: _Optional[_Union[WaitlistState, str]] = ..., position: _Optional[int] = ..., reservation_id: _Optional[int] = ..., offer_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QueueChallengeRequest(_message.Message):
    __slots__ = ("show_id",)
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    show_id: int
    def __init__(self, show_id: _Optional[int] = ...) -> None: ...

class QueueChallenge(_message.Message):
    __slots__ = ("algorithm", "challenge", "maxnumber", "salt", "signature")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    MAXNUMBER_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    challenge: str
    maxnumber: int
    salt: str
    signature: str
    def __init__(self, algorithm: _Optional[str] = ..., challenge: _Optional[str] = ..., maxnumber: _Optional[int] = ..., salt: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class QueueStatus(_message.Message):
    __slots__ = ("user_id", "concert_id", "show_id", "status", "position", "estimated_wait_seconds", "estimate_basis", "poll_after_seconds", "pre_queue", "token", "expires_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONCERT_ID_FIELD_NUMBER: _ClassVar[int]
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_BASIS_FIELD_NUMBER: _ClassVar[int]
    POLL_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PRE_QUEUE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    concert_id: int
    show_id: int
    status: QueueState
    position: int
    estimated_wait_seconds: int
    estimate_basis: str
    poll_after_seconds: float
    pre_queue: bool
    token: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[int] = ..., concert_id: _Optional[int] = ..., show_id: _Optional[int] = ..., status: _Optional[_Union[QueueState, str]] = ..., position: _Optional[int] = ..., estimated_wait_seconds: _Optional[int] = ..., estimate_basis: _Optional[str] = ..., poll_after_seconds: _Optional[float] = ..., pre_queue: _Optional[bool] = ..., token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Seat(_message.Message):
    __slots__ = ("id", "section", "row", "number", "price", "status")
    ID_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    section: str
    row: int
    number: int
    price: int
    status: SeatStatus
    def __init__(self, id: _Optional[int] = ..., section: _Optional[str] = ..., row: _Optional[int] = ..., number: _Optional[int] = ..., price: _Optional[int] = ..., status: _Optional[_Union[SeatStatus, str]] = ...) -> None: ...

class ListSeatsRequest(_message.Message):
    __slots__ = ("show_id", "status")
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    show_id: int
    status: SeatStatus
    def __init__(self, show_id: _Optional[int] = ..., status: _Optional[_Union[SeatStatus, str]] = ...) -> None: ...

class ListSeatsResponse(_message.Message):
    __slots__ = ("show_id", "version", "seats")
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    show_id: int
    version: int
    seats: _containers.RepeatedCompositeFieldContainer[Seat]
    def __init__(self, show_id: _Optional[int] = ..., version: _Optional[int] = ..., seats: _Optional[_Iterable[_Union[Seat, _Mapping]]] = ...) -> None: ...

class WatchSeatsRequest(_message.Message):
    __slots__ = ("show_id", "last_event_id")
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    show_id: int
    last_event_id: str
    def __init__(self, show_id: _Optional[int] = ..., last_event_id: _Optional[str] = ...) -> None: ...

class SeatEvent(_message.Message):
    __slots__ = ("id", "event_id", "type", "show_id", "seat_ids", "status", "reservation_id", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    SEAT_IDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    event_id: str
    type: str
    show_id: int
    seat_ids: _containers.RepeatedScalarFieldContainer[int]
    status: SeatStatus
    reservation_id: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., event_id: _Optional[str] = ..., type: _Optional[str] = ..., show_id: _Optional[int] = ..., seat_ids: _Optional[_Iterable[int]] = ..., status: _Optional[_Union[SeatStatus, str]] = ..., reservation_id: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HoldRequest(_message.Message):
    __slots__ = ("show_id", "seat_ids", "quantity", "section", "price")
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    SEAT_IDS_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    show_id: int
    seat_ids: _containers.RepeatedScalarFieldContainer[int]
    quantity: int
    section: str
    price: int
    def __init__(self, show_id: _Optional[int] = ..., seat_ids: _Optional[_Iterable[int]] = ..., quantity: _Optional[int] = ..., section: _Optional[str] = ..., price: _Optional[int] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("reservation_id", "show_id", "status", "seats", "total_price", "expires_at", "created_at", "confirmed_at", "closed_at", "currency")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PRICE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    reservation_id: int
    show_id: int
    status: ReservationStatus
    seats: _containers.RepeatedCompositeFieldContainer[Seat]
    total_price: int
    expires_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    confirmed_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    currency: str
    def __init__(self, reservation_id: _Optional[int] = ..., show_id: _Optional[int] = ..., status: _Optional[_Union[ReservationStatus, str]] = ..., seats: _Optional[_Iterable[_Union[Seat, _Mapping]]] = ..., total_price: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., confirmed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., currency: _Optional[str] = ...) -> None: ...

class ReservationRef(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: int
    def __init__(self, reservation_id: _Optional[int] = ...) -> None: ...

class ListReservationsRequest(_message.Message):
    __slots__ = ("before", "limit")
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    before: int
    limit: int
    def __init__(self, before: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListReservationsResponse(_message.Message):
    __slots__ = ("items", "next_before")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Reservation]
    next_before: int
    def __init__(self, items: _Optional[_Iterable[_Union[Reservation, _Mapping]]] = ..., next_before: _Optional[int] = ...) -> None: ...

class PayRequest(_message.Message):
    __slots__ = ("reservation_id", "method", "card_number")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    reservation_id: int
    method: PaymentMethod
    card_number: str
    def __init__(self, reservation_id: _Optional[int] = ..., method: _Optional[_Union[PaymentMethod, str]] = ..., card_number: _Optional[str] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("payment_id", "reservation_id", "amount", "method", "status", "reservation_status", "provider_reference", "failure_code", "created_at", "settled_at", "currency")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SETTLED_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    payment_id: int
    reservation_id: int
    amount: int
    method: PaymentMethod
    status: PaymentStatus
    reservation_status: ReservationStatus
    provider_reference: str
    failure_code: str
    created_at: _timestamp_pb2.Timestamp
    settled_at: _timestamp_pb2.Timestamp
    currency: str
    def __init__(self, payment_id: _Optional[int] = ..., reservation_id: _Optional[int] = ..., amount: _Optional[int] = ..., method: _Optional[_Union[PaymentMethod, str]] = ..., status: _Optional[_Union[PaymentStatus, str]] = ..., reservation_status: _Optional[_Union[ReservationStatus, str]] = ..., provider_reference: _Optional[str] = ..., failure_code: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., settled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., currency: _Optional[str] = ...) -> None: ...

class Ticket(_message.Message):
    __slots__ = ("ticket_id", "code", "status", "status_text", "reservation_id", "show_id", "seat_id", "section", "row", "number", "holder", "concert", "artist", "venue", "time_zone", "starts_at", "starts_at_local", "issued_at", "used_at", "used_gate", "voided_at", "payload")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_TEXT_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    SEAT_ID_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    CONCERT_FIELD_NUMBER: _ClassVar[int]
    ARTIST_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_LOCAL_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    USED_AT_FIELD_NUMBER: _ClassVar[int]
    USED_GATE_FIELD_NUMBER: _ClassVar[int]
    VOIDED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ticket_id: int
    code: str
    status: TicketStatus
    status_text: str
    reservation_id: int
    show_id: int
    seat_id: int
    section: str
    row: int
    number: int
    holder: str
    concert: str
    artist: str
    venue: str
    time_zone: str
    starts_at: _timestamp_pb2.Timestamp
    starts_at_local: str
    issued_at: _timestamp_pb2.Timestamp
    used_at: _timestamp_pb2.Timestamp
    used_gate: str
    voided_at: _timestamp_pb2.Timestamp
    payload: str
    def __init__(self, ticket_id: _Optional[int] = ..., code: _Optional[str] = ..., status: _Optional[_Union[TicketStatus, str]] = ..., status_text: _Optional[str] = ..., reservation_id: _Optional[int] = ..., show_id: _Optional[int] = ..., seat_id: _Optional[int] = ..., section: _Optional[str] = ..., row: _Optional[int] = ..., number: _Optional[int] = ..., holder: _Optional[str] = ..., concert: _Optional[str] = ..., artist: _Optional[str] = ..., venue: _Optional[str] = ..., time_zone: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., starts_at_local: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., used_gate: _Optional[str] = ..., voided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload: _Optional[str] = ...) -> None: ...

class TicketRef(_message.Message):
    __slots__ = ("ticket_id",)
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: int
    def __init__(self, ticket_id: _Optional[int] = ...) -> None: ...

class ListTicketsRequest(_message.Message):
    __slots__ = ("before", "limit")
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    before: int
    limit: int
    def __init__(self, before: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListTicketsResponse(_message.Message):
    __slots__ = ("items", "next_before")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Ticket]
    next_before: int
    def __init__(self, items: _Optional[_Iterable[_Union[Ticket, _Mapping]]] = ..., next_before: _Optional[int] = ...) -> None: ...

class CheckInRequest(_message.Message):
    __slots__ = ("show_id", "payload", "code", "gate")
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    show_id: int
    payload: str
    code: str
    gate: str
    def __init__(self, show_id: _Optional[int] = ..., payload: _Optional[str] = ..., code: _Optional[str] = ..., gate: _Optional[str] = ...) -> None: ...

class CheckInResult(_message.Message):
    __slots__ = ("result", "show_id", "gate", "scanned_at", "ticket_id", "seat", "holder", "used_at", "used_gate")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SHOW_ID_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    SCANNED_AT_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    SEAT_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    USED_AT_FIELD_NUMBER: _ClassVar[int]
    USED_GATE_FIELD_NUMBER: _ClassVar[int]
    result: ScanResult
    show_id: int
    gate: str
    scanned_at: _timestamp_pb2.Timestamp
    ticket_id: int
    seat: str
    holder: str
    used_at: _timestamp_pb2.Timestamp
    used_gate: str
    def __init__(self, result: _Optional[_Union[ScanResult, str]] = ..., show_id: _Optional[int] = ..., gate: _Optional[str] = ..., scanned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ticket_id: _Optional[int] = ..., seat: _Optional[str] = ..., holder: _Optional[str] = ..., used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., used_gate: _Optional[str] = ...) -> None: ...
