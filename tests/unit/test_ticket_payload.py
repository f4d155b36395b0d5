"""A ticket's signed body is compact UTF-8 JSON, byte for byte what `json.dumps` gave with
`ensure_ascii` off: payloads signed before and after the encoder changed read the same, and a
door that re-encodes the claims the old way agrees with the signature."""

from __future__ import annotations

import base64
import json

import pytest

from boxoffice.tickets.rules import PAYLOAD_PREFIX, TicketClaims, signing_input


@pytest.mark.parametrize(
    "holder",
    ["Kim Minji", "김민지", 'O"Brien \\ slash /', "tab\tnew\nline\x01", "sep\u2028para\u2029", "emoji 🎫"],
)
def test_the_signed_body_is_json_dumps_compact_utf8(holder: str) -> None:
    claims = TicketClaims(
        key_id="k1",
        code="ABCD2345EFGH",
        show_id=7,
        seat_id=1001,
        section="A",
        row=3,
        number=12,
        holder=holder,
        issued_at=1_765_000_000,
    )
    prefix, body = signing_input(claims).split(".")
    assert prefix == PAYLOAD_PREFIX
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert raw == json.dumps(claims.body(), separators=(",", ":"), ensure_ascii=False).encode()
    assert json.loads(raw)["h"] == holder
