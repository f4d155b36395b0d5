"""The ticket's QR code, drawn by segno (pure: bytes in, bytes out; no I/O, served by the product)."""

from __future__ import annotations

import io

import segno

# M: ~15% of the code may be damaged (a scratched phone screen, a crease in the paper).
ERROR_LEVEL = "m"


def qr_svg(payload: str, *, scale: int = 4) -> bytes:
    out = io.BytesIO()
    segno.make(payload, error=ERROR_LEVEL, micro=False).save(
        out, kind="svg", scale=scale, border=4, xmldecl=False, svgns=True, title="Ticket QR code"
    )
    return out.getvalue()


def qr_png(payload: str, *, scale: int = 6) -> bytes:
    out = io.BytesIO()
    segno.make(payload, error=ERROR_LEVEL, micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
