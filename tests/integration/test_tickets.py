"""Tickets: issued with the payment (balance and card), signed (Ed25519, verifiable offline with the
public keys alone, rotatable), voided by a refund, readable only by their owner (or an admin), QR
codes that decode to the payload, an order PDF that renders with a readable QR; and the door: every
scan answer, bad input that changes nothing, offline sync with conflicts, re-entry.
Every test ends with the invariants (I1-I4, I7) checked against the database."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import pypdfium2
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import text

from boxoffice.tickets.keys import SECRET_NAME, Keyring, keyring, reload_keyring, verify_offline
from boxoffice.tickets.rules import CROCKFORD
from tests.factories import make_user
from tests.integration.test_booking_support import assert_invariants, simulator
from tests.integration.test_payments import held, pay

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-output" / "tickets"


@pytest.fixture(autouse=True)
async def _invariants_after(runtime):  # type: ignore[no-untyped-def]
    yield
    await assert_invariants(runtime)


async def bought(client, runtime, *, seats=2, method="BALANCE", name="Kim Minji"):  # type: ignore[no-untyped-def]
    fan = await make_user(runtime, balance=100_000, name=name)
    show, rid = await held(client, runtime, fan, seats=seats)
    resp = await pay(client, runtime, fan, show["show_id"], rid, method=method)
    assert resp.status_code == 201, resp.text
    return fan, show, rid


async def rows(runtime, sql, **params):  # type: ignore[no-untyped-def]
    async with runtime.sessions() as s:
        return [dict(r) for r in (await s.execute(text(sql), params)).mappings()]


async def door(runtime):  # type: ignore[no-untyped-def]
    return await make_user(runtime, role="DOOR", name="Gate Staff")


async def scan(client, staff, show_id, gate="A", **body):  # type: ignore[no-untyped-def]
    resp = await client.post(
        f"/api/shows/{show_id}/checkins", json={"gate": gate, **body}, headers=staff["headers"]
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def decode_qr(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image)]


async def test_balance_payment_issues_one_signed_ticket_per_seat(client, runtime):  # type: ignore[no-untyped-def]
    fan, show, rid = await bought(client, runtime, seats=2)
    resp = await client.get("/api/tickets", headers=fan["headers"])
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert len(items) == 2 and resp.json()["next_before"] is None
    assert sorted(t["seat_id"] for t in items) == sorted(show["seat_ids"][:2])
    keys = (await client.get(f"/api/shows/{show['show_id']}/ticket-keys")).json()["keys"]
    public = {k["key_id"]: k["public_key"] for k in keys}
    for t in items:
        assert t["status"] == "VALID" and t["status_text"] == "Valid" and t["holder"] == "Kim Minji"
        assert t["reservation_id"] == rid and t["show_id"] == show["show_id"]
        groups = t["code"].split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4] and all(ch in CROCKFORD for ch in "".join(groups))
        claims = verify_offline(t["payload"], public)  # the public keys alone: what a gate has
        assert claims is not None
        assert (claims.show_id, claims.seat_id, claims.holder) == (show["show_id"], t["seat_id"], "Kim Minji")
        assert claims.code == t["code"].replace("-", "")
        assert t["time_zone"] == "Asia/Seoul" and t["starts_at_local"].endswith("+09:00")
    db = await rows(runtime, "SELECT seat_id, status, user_id FROM tickets WHERE reservation_id = :r", r=rid)
    assert (
        len(db) == 2 and {r["status"] for r in db} == {"VALID"} and {r["user_id"] for r in db} == {fan["id"]}
    )
    # a replayed payment issues nothing more
    again = await pay(client, runtime, fan, show["show_id"], rid)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert len(await rows(runtime, "SELECT id FROM tickets")) == 2


async def test_card_payment_issues_tickets(client, runtime):  # type: ignore[no-untyped-def]
    async with simulator(runtime):
        _fan, show, rid = await bought(client, runtime, seats=3, method="CARD")
    db = await rows(
        runtime, "SELECT seat_id FROM tickets WHERE reservation_id = :r AND status = 'VALID'", r=rid
    )
    assert sorted(r["seat_id"] for r in db) == sorted(show["seat_ids"][:3])


async def test_failed_payment_issues_no_ticket(client, runtime):  # type: ignore[no-untyped-def]
    poor = await make_user(runtime, balance=1_000)
    show, rid = await held(client, runtime, poor)
    resp = await pay(client, runtime, poor, show["show_id"], rid)
    assert resp.status_code == 402
    assert await rows(runtime, "SELECT id FROM tickets") == []


async def test_refund_voids_the_tickets_at_once(client, runtime):  # type: ignore[no-untyped-def]
    fan, show, rid = await bought(client, runtime, seats=2)
    tickets = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"]
    resp = await client.delete(f"/api/reservations/{rid}", headers=fan["headers"])
    assert resp.status_code == 200 and resp.json()["status"] == "CANCELLED", resp.text
    db = await rows(runtime, "SELECT status, voided_at FROM tickets WHERE reservation_id = :r", r=rid)
    assert {r["status"] for r in db} == {"VOID"} and all(r["voided_at"] for r in db)
    staff = await door(runtime)
    answer = await scan(client, staff, show["show_id"], payload=tickets[0]["payload"])
    assert answer["result"] == "VOID" and answer["seat"] == tickets[0]["seat"]
    answer = await scan(client, staff, show["show_id"], code=tickets[1]["code"])
    assert answer["result"] == "VOID"
    mine = (await client.get(f"/api/tickets/{tickets[0]['ticket_id']}", headers=fan["headers"])).json()
    assert mine["status"] == "VOID" and mine["status_text"] == "Void"
    # the seat sold again gets a new ticket; the void one stays void
    again = await make_user(runtime, balance=100_000)
    from tests.integration.test_booking_support import gated

    resp = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": [tickets[0]["seat_id"]]},
        headers=gated(runtime, again, show["show_id"]),
    )
    assert resp.status_code == 201, resp.text
    assert (
        await pay(client, runtime, again, show["show_id"], resp.json()["reservation_id"])
    ).status_code == 201
    live = await rows(
        runtime,
        "SELECT user_id FROM tickets WHERE seat_id = :s AND status <> 'VOID'",
        s=tickets[0]["seat_id"],
    )
    assert live == [{"user_id": again["id"]}]


async def test_only_the_owner_or_an_admin_reads_a_ticket(client, runtime):  # type: ignore[no-untyped-def]
    fan, _show, rid = await bought(client, runtime, seats=1)
    ticket = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"][0]
    url = f"/api/tickets/{ticket['ticket_id']}"
    other = await make_user(runtime)
    staff = await door(runtime)
    admin = await make_user(runtime, role="ADMIN")
    for stranger in (other, staff):
        for path in (url, f"{url}/qr.svg", f"{url}/qr.png", f"/api/tickets/pdf?reservation_id={rid}"):
            resp = await client.get(path, headers=stranger["headers"])
            assert resp.status_code == 404 and resp.json()["code"] == "TICKET_NOT_FOUND", (path, resp.text)
        assert (await client.get("/api/tickets", headers=stranger["headers"])).json()["items"] == []
    assert (await client.get(url, headers=admin["headers"])).json()["ticket_id"] == ticket["ticket_id"]
    # gate staff scan; they do not read fans' orders or the console
    assert (await client.get(f"/api/reservations/{rid}", headers=staff["headers"])).status_code == 404
    fans_page = await client.get(
        "/api/admin/fans", params={"email": "x@example.test"}, headers=staff["headers"]
    )
    assert fans_page.status_code == 403
    sales = await client.get(f"/api/admin/shows/{ticket['show_id']}/sales.csv", headers=staff["headers"])
    assert sales.status_code == 403
    assert (await client.get(url)).status_code == 401
    assert (await client.get("/api/tickets/999999", headers=fan["headers"])).json()[
        "code"
    ] == "TICKET_NOT_FOUND"
    assert (await client.get("/api/tickets/0", headers=fan["headers"])).status_code == 422
    assert (await client.get("/api/tickets/abc", headers=fan["headers"])).status_code == 404


async def test_qr_codes_decode_to_the_signed_payload(client, runtime):  # type: ignore[no-untyped-def]
    fan, _show, _rid = await bought(client, runtime, seats=1)
    ticket = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"][0]
    png = await client.get(ticket["qr_png"], headers=fan["headers"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "private, no-store"
    assert decode_qr(Image.open(io.BytesIO(png.content))) == [ticket["payload"]]
    svg = await client.get(ticket["qr_svg"], headers=fan["headers"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "<script" not in svg.text


async def test_order_pdf_renders_with_a_readable_qr_per_ticket(client, runtime):  # type: ignore[no-untyped-def]
    fan, _show, rid = await bought(client, runtime, seats=2, name="김민지")
    tickets = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"]
    resp = await client.get(f"/api/tickets/pdf?reservation_id={rid}", headers=fan["headers"])
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
    pdf = pypdfium2.PdfDocument(resp.content)
    assert len(pdf) == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    found = []
    for index in range(len(pdf)):
        page = pdf[index]
        image = page.render(scale=2).to_pil()
        image.save(ARTIFACTS / f"order-page-{index + 1}.png")
        found += decode_qr(image)
        words = page.get_textpage().get_text_range()
        assert "Seat" in words and "Code:" in words and "김민지" in words
    assert sorted(found) == sorted(t["payload"] for t in tickets)
    missing = await client.get("/api/tickets/pdf?reservation_id=424242", headers=fan["headers"])
    assert missing.status_code == 404 and missing.json()["code"] == "TICKET_NOT_FOUND"


async def test_scan_answers_each_case_and_admits_once(client, runtime):  # type: ignore[no-untyped-def]
    fan, show, _rid = await bought(client, runtime, seats=2)
    _fan2, other_show, _rid2 = await bought(client, runtime, seats=1)
    tickets = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"]
    staff = await door(runtime)
    sid = show["show_id"]
    first = await scan(client, staff, sid, gate="North 1", payload=tickets[0]["payload"])
    assert (
        first["result"] == "VALID" and first["seat"] == tickets[0]["seat"] and first["holder"] == "Kim Minji"
    )
    second = await scan(client, staff, sid, gate="South 2", payload=tickets[0]["payload"])
    assert second["result"] == "ALREADY_USED" and second["used_gate"] == "North 1"
    assert second["used_at"] == first["used_at"]
    # the typed code: case, spaces and dashes do not matter; O/I/L read as 0/1/1
    typed = tickets[1]["code"].lower().replace("-", " ")
    assert (await scan(client, staff, sid, code=typed))["result"] == "VALID"
    assert (await scan(client, staff, sid, code=tickets[1]["code"]))["result"] == "ALREADY_USED"
    # another show's ticket, at this show's gate: WRONG_SHOW, and nothing about it
    wrong = await scan(client, staff, other_show["show_id"], payload=tickets[0]["payload"])
    assert wrong["result"] == "WRONG_SHOW" and wrong.get("seat") is None and wrong.get("holder") is None
    # forged / altered / truncated / garbage / unknown code: NOT_A_TICKET
    payload = tickets[0]["payload"]
    body, sig = payload.rsplit(".", 1)
    forged = body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    for bad in (forged, payload[:-10], payload[: len(payload) // 2], "hello", "BO1.e30.e30", "BO1..."):
        assert (await scan(client, staff, sid, payload=bad))["result"] == "NOT_A_TICKET", bad
    for bad in ("0000-0000-0000-0000", "not a code", "ZZZZ"):
        assert (await scan(client, staff, sid, code=bad))["result"] == "NOT_A_TICKET"
    # a payload signed by a key we do not hold
    foreign = Keyring(["someone else's key"])
    claims = keyring(runtime).verify(payload)
    assert claims is not None
    from dataclasses import replace

    alien = foreign.sign(replace(claims, key_id=foreign.signing_key_id))
    assert (await scan(client, staff, sid, payload=alien))["result"] == "NOT_A_TICKET"
    # bad requests: clear problems, nothing changes
    for body_ in (
        {"gate": "A"},
        {"gate": "A", "code": "X", "payload": "Y"},
        {"gate": "A", "payload": "x" * 5000},
        {"gate": "", "code": tickets[0]["code"]},
        {"gate": "A" * 41, "code": tickets[0]["code"]},
        {"gate": "A\x00", "code": tickets[0]["code"]},
    ):
        resp = await client.post(f"/api/shows/{sid}/checkins", json=body_, headers=staff["headers"])
        assert resp.status_code == 422 and resp.json()["code"] == "VALIDATION_ERROR", body_
    resp = await client.post(
        "/api/shows/99999/checkins", json={"gate": "A", "code": "X"}, headers=staff["headers"]
    )
    assert resp.status_code == 404 and resp.json()["code"] == "SHOW_NOT_FOUND"
    # a fan cannot scan (not even their own ticket), and a scan needs a login
    resp = await client.post(
        f"/api/shows/{sid}/checkins", json={"gate": "A", "code": "X"}, headers=fan["headers"]
    )
    assert resp.status_code == 403 and resp.json()["code"] == "DOOR_ROLE_REQUIRED"
    assert (
        await client.post(f"/api/shows/{sid}/checkins", json={"gate": "A", "code": "X"})
    ).status_code == 401
    db = await rows(runtime, "SELECT id, status, used_gate FROM tickets WHERE show_id = :s", s=sid)
    assert {r["id"]: (r["status"], r["used_gate"]) for r in db} == {
        tickets[0]["ticket_id"]: ("USED", "North 1"),
        tickets[1]["ticket_id"]: ("USED", "A"),
    }
    log = await rows(
        runtime, "SELECT result, count(*) AS n FROM checkins WHERE show_id = :s GROUP BY result", s=sid
    )
    assert {r["result"]: r["n"] for r in log}["VALID"] == 2
    # the console's counts
    entries = (await client.get(f"/api/shows/{sid}/entries", headers=staff["headers"])).json()
    assert entries["admitted"] == 2 and entries["inside"] == 2 and entries["conflicts"] == 0
    assert {g["gate"]: g["admitted"] for g in entries["gates"]}["North 1"] == 1
    assert sum(m["admitted"] for m in entries["per_minute"]) == 2
    assert (await client.get(f"/api/shows/{sid}/entries", headers=fan["headers"])).status_code == 403
    # the sales CSV says when each order came in
    admin = await make_user(runtime, role="ADMIN")
    sales = await client.get(f"/api/admin/shows/{sid}/sales.csv", headers=admin["headers"])
    import csv

    (row,) = list(csv.DictReader(io.StringIO(sales.text)))
    (earliest,) = await rows(runtime, "SELECT min(used_at) AS at FROM tickets WHERE show_id = :s", s=sid)
    checked_in = datetime.fromisoformat(row["checked_in_at"].replace("Z", "+00:00"))
    assert row["tickets_used"] == "2" and checked_in == earliest["at"]


async def test_rotated_keys_still_verify_old_tickets(client, runtime):  # type: ignore[no-untyped-def]
    fan, show, _rid = await bought(client, runtime, seats=1)
    old = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"][0]
    saved = keyring(runtime)
    from boxoffice.tickets.keys import rotate

    data_dir = runtime.settings.data_dir
    try:
        new_id = rotate(data_dir)
        reload_keyring(runtime)
        assert keyring(runtime).signing_key_id == new_id != saved.signing_key_id
        keys = (await client.get(f"/api/shows/{show['show_id']}/ticket-keys")).json()["keys"]
        assert {k["key_id"] for k in keys} == {new_id, saved.signing_key_id}
        fan2, show2, _ = await bought(client, runtime, seats=1)
        new = (await client.get("/api/tickets", headers=fan2["headers"])).json()["items"][0]
        assert keyring(runtime).verify(new["payload"]).key_id == new_id
        staff = await door(runtime)
        assert (await scan(client, staff, show["show_id"], payload=old["payload"]))["result"] == "VALID"
        assert (await scan(client, staff, show2["show_id"], payload=new["payload"]))["result"] == "VALID"
    finally:
        runtime.components[SECRET_NAME] = saved


async def test_offline_gates_verify_locally_and_sync_conflicts(client, runtime):  # type: ignore[no-untyped-def]
    fan, show, rid = await bought(client, runtime, seats=2)
    sid = show["show_id"]
    tickets = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"]
    staff = await door(runtime)
    listing = await client.get(f"/api/shows/{sid}/door-list", headers=staff["headers"])
    assert listing.status_code == 200, listing.text
    data = listing.json()
    assert {t["code"] for t in data["tickets"]} == {t["code"].replace("-", "") for t in tickets}
    assert all("holder" not in t for t in data["tickets"])
    public = {k["key_id"]: k["public_key"] for k in data["keys"]}
    # offline: the gate checks the QR with the downloaded public keys, no server involved
    for t in tickets:
        claims = verify_offline(t["payload"], public)
        assert claims is not None and claims.show_id == sid
    assert verify_offline(tickets[0]["payload"][:-4] + "AAAA", public) is None
    # two offline gates both let ticket 0 in; gate B also let ticket 1 in
    at = "2026-12-24T19:00:00+09:00"
    a = await client.post(
        f"/api/shows/{sid}/checkins/sync",
        json={"gate": "Offline A", "scans": [{"payload": tickets[0]["payload"], "scanned_at": at}]},
        headers=staff["headers"],
    )
    assert a.status_code == 200, a.text
    assert [r["result"] for r in a.json()["results"]] == ["VALID"] and a.json()["conflicts"] == 0
    b = await client.post(
        f"/api/shows/{sid}/checkins/sync",
        json={
            "gate": "Offline B",
            "scans": [
                {"payload": tickets[0]["payload"], "scanned_at": "2026-12-24T19:01:00+09:00"},
                {"code": tickets[1]["code"], "scanned_at": "2026-12-24T19:02:00+09:00"},
            ],
        },
        headers=staff["headers"],
    )
    results = b.json()["results"]
    assert [r["result"] for r in results] == ["CONFLICT", "VALID"] and b.json()["conflicts"] == 1
    assert results[0]["used_gate"] == "Offline A"
    # gate A sends its batch again (its answer was lost): the same admission, no conflict, no new row
    replay = await client.post(
        f"/api/shows/{sid}/checkins/sync",
        json={"gate": "Offline A", "scans": [{"payload": tickets[0]["payload"], "scanned_at": at}]},
        headers=staff["headers"],
    )
    assert [r["result"] for r in replay.json()["results"]] == ["VALID"] and replay.json()["conflicts"] == 0
    entries = (await client.get(f"/api/shows/{sid}/entries", headers=staff["headers"])).json()
    assert entries["conflicts"] == 1 and entries["inside"] == 2
    conflict = entries["recent_conflicts"][0]
    assert conflict["gate"] == "Offline B" and conflict["used_gate"] == "Offline A"
    assert conflict["code"] == tickets[0]["code"].replace("-", "")
    # online afterwards: both already used
    assert (await scan(client, staff, sid, payload=tickets[0]["payload"]))["result"] == "ALREADY_USED"
    # a fan cannot download the door list or sync
    assert (await client.get(f"/api/shows/{sid}/door-list", headers=fan["headers"])).status_code == 403
    del rid


async def test_reentry_only_where_the_show_allows_it(client, runtime):  # type: ignore[no-untyped-def]
    fan, show, _rid = await bought(client, runtime, seats=1)
    sid = show["show_id"]
    ticket = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"][0]
    staff = await door(runtime)
    assert (await scan(client, staff, sid, code=ticket["code"]))["result"] == "VALID"
    out = await client.post(
        f"/api/shows/{sid}/checkouts", json={"gate": "A", "code": ticket["code"]}, headers=staff["headers"]
    )
    assert out.status_code == 409 and out.json()["code"] == "REENTRY_NOT_ALLOWED"
    admin = await make_user(runtime, role="ADMIN")
    patched = await client.patch(f"/api/admin/shows/{sid}", json={"reentry": True}, headers=admin["headers"])
    assert patched.status_code == 200 and patched.json()["reentry"] is True, patched.text
    bad = await client.patch(f"/api/admin/shows/{sid}", json={"reentry": None}, headers=admin["headers"])
    assert bad.status_code == 422
    out = await client.post(
        f"/api/shows/{sid}/checkouts", json={"gate": "A", "code": ticket["code"]}, headers=staff["headers"]
    )
    assert out.status_code == 204, out.text
    assert (await scan(client, staff, sid, code=ticket["code"]))["result"] == "VALID"
    assert (await scan(client, staff, sid, code=ticket["code"]))["result"] == "ALREADY_USED"
    again = await client.post(
        f"/api/shows/{sid}/checkouts", json={"gate": "A", "code": "bad"}, headers=staff["headers"]
    )
    assert again.status_code == 409


async def test_grpc_tickets_and_check_in_match_the_http_api(client, runtime, grpc_target):  # type: ignore[no-untyped-def]
    import grpc

    from boxoffice.grpc import ticket_pb2 as pb
    from tests.integration.grpc_support import error_info, meta, ticket_stub

    fan, show, _rid = await bought(client, runtime, seats=2)
    http_items = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"]
    staff = await door(runtime)
    other = await make_user(runtime)
    async with ticket_stub(grpc_target) as stub:
        page = await stub.ListTickets(pb.ListTicketsRequest(limit=1), metadata=meta(fan))
        assert len(page.items) == 1 and page.next_before == page.items[0].ticket_id
        rest = await stub.ListTickets(pb.ListTicketsRequest(before=page.next_before), metadata=meta(fan))
        got = [*page.items, *rest.items]
        assert [t.ticket_id for t in got] == [t["ticket_id"] for t in http_items] and rest.next_before == 0
        one = await stub.GetTicket(pb.TicketRef(ticket_id=got[0].ticket_id), metadata=meta(fan))
        assert one.payload == http_items[0]["payload"] and one.status == pb.TICKET_STATUS_VALID
        assert one.code == http_items[0]["code"] and one.time_zone == "Asia/Seoul"
        for stranger in (other, staff):
            try:
                await stub.GetTicket(pb.TicketRef(ticket_id=got[0].ticket_id), metadata=meta(stranger))
                raise AssertionError("a stranger read the ticket")
            except grpc.aio.AioRpcError as exc:
                assert (
                    exc.code() == grpc.StatusCode.NOT_FOUND and error_info(exc).reason == "TICKET_NOT_FOUND"
                )
        scan_ = pb.CheckInRequest(show_id=show["show_id"], payload=one.payload, gate="gRPC gate")
        first = await stub.CheckIn(scan_, metadata=meta(staff))
        assert first.result == pb.SCAN_RESULT_VALID and first.seat == http_items[0]["seat"]
        second = await stub.CheckIn(scan_, metadata=meta(staff))
        assert second.result == pb.SCAN_RESULT_ALREADY_USED and second.used_gate == "gRPC gate"
        typed = pb.CheckInRequest(show_id=show["show_id"], code="nope", gate="gRPC gate")
        assert (await stub.CheckIn(typed, metadata=meta(staff))).result == pb.SCAN_RESULT_NOT_A_TICKET
        used = await stub.GetTicket(pb.TicketRef(ticket_id=got[0].ticket_id), metadata=meta(fan))
        assert used.status == pb.TICKET_STATUS_USED and used.status_text.startswith("Used at ")


async def test_pdf_embeds_a_font_for_names_outside_latin1(client, runtime):  # type: ignore[no-untyped-def]
    """A Greek name is drawn with an embedded font (DejaVu here; Nanum/Noto CJK for Hangul where
    installed), so the page shows it on any viewer: dark pixels right of "Holder:"."""
    from boxoffice.tickets.pdf import UNICODE_FONTS

    installed = any(Path(path).exists() for _, path, _ in UNICODE_FONTS)
    assert installed, "no Unicode TTF font: `make test` installs fonts-dejavu-core (make test-fonts)"
    fan, _show, rid = await bought(client, runtime, seats=1, name="Ελένη Παπαδοπούλου")
    resp = await client.get(f"/api/tickets/pdf?reservation_id={rid}", headers=fan["headers"])
    assert b"DejaVuSans" in resp.content or b"Nanum" in resp.content or b"NotoSans" in resp.content
    page = pypdfium2.PdfDocument(resp.content)[0]
    assert "Ελένη Παπαδοπούλου" in page.get_textpage().get_text_range()
    image = page.render(scale=2).to_pil().convert("L")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTIFACTS / "order-greek-holder.png")
    # the holder's name: right of the "Holder:" label, on its line (A4 at 144 dpi)
    region = image.crop((230, 410, 700, 460))
    assert sum(region.histogram()[:100]) > 200, "the name is not drawn"


async def test_pdf_draws_a_hangul_name_with_an_embedded_korean_font(client, runtime):  # type: ignore[no-untyped-def]
    """The product's first market: a Korean holder's name is drawn with an embedded Hangul font
    (NanumGothic, which `make test` installs: fonts-nanum), not left to the viewer."""
    assert Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf").exists(), (
        "no Hangul font: `make test` installs fonts-nanum (make test-fonts)"
    )
    fan, _show, rid = await bought(client, runtime, seats=1, name="김민지")
    resp = await client.get(f"/api/tickets/pdf?reservation_id={rid}", headers=fan["headers"])
    assert b"NanumGothic" in resp.content
    page = pypdfium2.PdfDocument(resp.content)[0]
    assert "김민지" in page.get_textpage().get_text_range()
    image = page.render(scale=2).to_pil().convert("L")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image.save(ARTIFACTS / "order-hangul-holder.png")
    region = image.crop((230, 410, 700, 460))
    assert sum(region.histogram()[:100]) > 100, "the name is not drawn"


async def test_times_are_shown_in_the_venue_time_zone(client, runtime):  # type: ignore[no-untyped-def]
    admin = await make_user(runtime, role="ADMIN")
    venue = {"name": "Salle", "sections": [{"name": "A", "rows": 1, "seats_per_row": 4}]}
    bad = await client.post(
        "/api/admin/venues", json={**venue, "time_zone": "Mars/Olympus"}, headers=admin["headers"]
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "time_zone"]
    made = await client.post(
        "/api/admin/venues", json={**venue, "time_zone": "Europe/Paris"}, headers=admin["headers"]
    )
    assert made.status_code == 201 and made.json()["time_zone"] == "Europe/Paris", made.text
    fan, show, _rid = await bought(client, runtime, seats=1)
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text(
                "UPDATE venues SET time_zone = 'Europe/Paris' WHERE id = (SELECT venue_id FROM concerts c "
                "JOIN shows sh ON sh.concert_id = c.id WHERE sh.id = :s)"
            ),
            {"s": show["show_id"]},
        )
    ticket = (await client.get("/api/tickets", headers=fan["headers"])).json()["items"][0]
    local = datetime.fromisoformat(ticket["starts_at_local"])
    assert ticket["time_zone"] == "Europe/Paris" and local.utcoffset() in (
        timedelta(hours=1),
        timedelta(hours=2),
    )
    assert local == datetime.fromisoformat(ticket["starts_at"].replace("Z", "+00:00"))
