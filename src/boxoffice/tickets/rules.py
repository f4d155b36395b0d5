"""Pure ticket rules (house rule 9): the public code, the signed payload's wire format, the scan
answers. No I/O; the keys themselves are in `tickets/keys.py`.

The public code: 16 Crockford base32 characters = 80 random bits, shown in four groups of four
(`7K2M-QX9D-4HTR-C1VN`). Typing is forgiving: case, spaces and dashes do not matter, and the
letters people confuse with digits (O, I, L) read as 0, 1, 1.

The payload (what the QR code holds): `BO1.<body>.<signature>`, where body is the base64url of a
compact JSON object naming the ticket (code), show, seat (id and label), holder name and the key id,
and signature the base64url Ed25519 signature of the ASCII bytes `BO1.<body>`. A gate holding the
public keys verifies it with no network at all.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from boxoffice.kit.i18n import _

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16  # x 5 bits = 80 bits
CODE_GROUP = 4
PAYLOAD_PREFIX = "BO1"
# A real payload is ~250 characters; anything much longer is not one of ours (and is not parsed).
MAX_PAYLOAD_LENGTH = 1024
MAX_GATE_LENGTH = 40
# Who may scan at the gates (and read a show's door list and entries).
DOOR_ROLES = ("DOOR", "ADMIN")
_TYPO = str.maketrans({"O": "0", "I": "1", "L": "1"})


class TicketStatus(StrEnum):
    VALID = "VALID"
    USED = "USED"
    VOID = "VOID"


class ScanResult(StrEnum):
    """What a gate shows: admitted, or why not."""

    VALID = "VALID"
    ALREADY_USED = "ALREADY_USED"
    VOID = "VOID"
    WRONG_SHOW = "WRONG_SHOW"
    NOT_A_TICKET = "NOT_A_TICKET"
    # An offline gate's synced scan of a ticket that had entered meanwhile (elsewhere): a double
    # entry the console shows, never a silent one.
    CONFLICT = "CONFLICT"


def new_code() -> str:
    """A fresh public code (80 bits from the OS's CSPRNG, in one read), normalized (no dashes)."""
    bits = int.from_bytes(secrets.token_bytes(CODE_LENGTH * 5 // 8))
    return "".join(CROCKFORD[(bits >> shift) & 31] for shift in range(0, CODE_LENGTH * 5, 5))


def normalize_code(typed: str) -> str | None:
    """The code as stored, from what a person typed or a scanner read; None when it cannot be one."""
    if len(typed) > 4 * CODE_LENGTH:
        return None
    cleaned = "".join(ch for ch in typed.upper() if ch not in " -\t").translate(_TYPO)
    if len(cleaned) != CODE_LENGTH or any(ch not in CROCKFORD for ch in cleaned):
        return None
    return cleaned


def display_code(code: str) -> str:
    return "-".join(code[i : i + CODE_GROUP] for i in range(0, len(code), CODE_GROUP))


def seat_label(section: str, row: int, number: int) -> str:
    """The seat in the reader's words (kit/i18n.py's current language): "A · Row 3 · Seat 12",
    "A 구역 3열 12번"."""
    return _("%(section)s · Row %(row)s · Seat %(number)s") % {
        "section": section,
        "row": row,
        "number": number,
    }


@dataclass(frozen=True, slots=True)
class TicketClaims:
    """What a signed payload says."""

    key_id: str
    code: str
    show_id: int
    seat_id: int
    section: str
    row: int
    number: int
    holder: str
    issued_at: int  # epoch seconds

    def body(self) -> dict[str, Any]:
        return {
            "k": self.key_id,
            "c": self.code,
            "sh": self.show_id,
            "se": self.seat_id,
            "sec": self.section,
            "r": self.row,
            "n": self.number,
            "h": self.holder,
            "iat": self.issued_at,
        }

    @property
    def seat(self) -> str:
        return seat_label(self.section, self.row, self.number)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_input(claims: TicketClaims) -> str:
    """`BO1.<body>`: the part of the payload that is signed."""
    body = msgspec.json.encode(claims.body())  # compact UTF-8: json.dumps' bytes with ensure_ascii off
    return f"{PAYLOAD_PREFIX}.{_b64(body)}"


def assemble(signed_part: str, signature: bytes) -> str:
    return f"{signed_part}.{_b64(signature)}"


@dataclass(frozen=True, slots=True)
class ParsedPayload:
    """A payload split into what was signed, the signature and the claims (not yet verified)."""

    signed_part: bytes
    signature: bytes
    claims: TicketClaims


def parse_payload(payload: str) -> ParsedPayload | None:
    """The parts of a payload, or None when it is not shaped like one of ours (too long, truncated,
    not base64, not our JSON). Says nothing about the signature: verify that with the keys."""
    if len(payload) > MAX_PAYLOAD_LENGTH:
        return None
    parts = payload.strip().split(".")
    if len(parts) != 3 or parts[0] != PAYLOAD_PREFIX:
        return None
    try:
        body = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
        claims = TicketClaims(
            key_id=_text(body["k"], 32),
            code=_text(body["c"], CODE_LENGTH),
            show_id=_int(body["sh"]),
            seat_id=_int(body["se"]),
            section=_text(body["sec"], 200),
            row=_int(body["r"]),
            number=_int(body["n"]),
            holder=_text(body["h"], 200),
            issued_at=_int(body["iat"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if len(signature) != 64:  # Ed25519
        return None
    return ParsedPayload(f"{parts[0]}.{parts[1]}".encode("ascii"), signature, claims)


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError("not a short string")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise ValueError("not an id")
    return value


def status_words(status: str, used_at: datetime | None) -> str:
    """The fan's words for a ticket's status: valid / used at HH:MM / void (HH:MM in the time zone
    `used_at` carries: convert it to the venue's first)."""
    if status == TicketStatus.USED and used_at is not None:
        return _("Used at %(time)s") % {"time": f"{used_at:%H:%M}"}
    if status == TicketStatus.VOID:
        return _("Void")
    return _("Valid")
