"""An order's tickets as a PDF (reportlab): one A4 page per ticket, with the QR code (segno's PNG,
the same payload the page shows), the show in the venue's time zone, the seat, the holder and the
code to type. Pure: ticket views in, bytes out.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from boxoffice.kit.i18n import _
from boxoffice.tickets.qr import qr_png

LATIN = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
# Names and titles outside Latin-1 (Hangul, Greek, Cyrillic...) use the first of these fonts that
# has every glyph, embedded (subset) in the PDF; Debian: fonts-nanum or fonts-noto-cjk for Hangul,
# fonts-dejavu-core (usually there) for most other scripts.
UNICODE_FONTS = (
    ("NanumGothic", "/usr/share/fonts/truetype/nanum/NanumGothic.ttf", 0),
    ("NotoSansCJK", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0),
    ("DejaVuSans", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),
)
# Else Hangul falls back to one of reportlab's built-in CID fonts (no file to ship): the PDF names
# it and the viewer supplies the glyphs (Acrobat, macOS, Windows and Android viewers do; a Linux box
# without a CJK font shows the text layer only).
KOREAN = "HYGothic-Medium"


def _embedded(name: str, path: str, index: int) -> TTFont | None:
    if name in pdfmetrics.getRegisteredFontNames():
        font = pdfmetrics.getFont(name)
        return font if isinstance(font, TTFont) else None
    if not Path(path).exists():
        return None
    try:
        font = TTFont(name, path, subfontIndex=index)
    except Exception:  # a broken or unsupported font file: try the next one
        return None
    pdfmetrics.registerFont(font)
    return font


def _font(text: str, bold: bool = False) -> str:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        wanted = {ord(ch) for ch in text}
        for name, path, index in UNICODE_FONTS:
            font = _embedded(name, path, index)
            if font is not None and wanted <= set(font.face.charToGlyph):
                return name
        if KOREAN not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(KOREAN))
        return KOREAN
    return LATIN_BOLD if bold else LATIN


def _text(canvas: Canvas, x: float, y: float, text: str, size: float, bold: bool = False) -> None:
    canvas.setFont(_font(text, bold), size)
    canvas.drawString(x, y, text)


def tickets_pdf(tickets: list[dict[str, Any]], *, title: str = "Boxoffice tickets") -> bytes:
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1)
    canvas.setTitle(title)
    canvas.setAuthor("Boxoffice")
    width, height = A4
    for ticket in tickets:
        left, top = 20 * mm, height - 25 * mm
        canvas.setStrokeColorRGB(0.2, 0.2, 0.2)
        canvas.roundRect(15 * mm, height - 160 * mm, width - 30 * mm, 145 * mm, 6 * mm)
        _text(canvas, left, top, ticket["concert"], 22, bold=True)
        _text(canvas, left, top - 10 * mm, ticket["artist"], 13)
        _text(canvas, left, top - 22 * mm, ticket["starts_text"], 12)
        _text(canvas, left, top - 30 * mm, ticket["venue"], 12)
        _text(canvas, left, top - 44 * mm, ticket["seat"], 16, bold=True)
        _text(canvas, left, top - 54 * mm, _("Holder:"), 12)
        _text(canvas, left + 18 * mm, top - 54 * mm, ticket["holder"], 12)
        _text(canvas, left, top - 66 * mm, _("Code: %(code)s") % {"code": ticket["code"]}, 14, bold=True)
        status = ticket["status_text"]
        _text(canvas, left, top - 76 * mm, _("Status: %(status)s") % {"status": status}, 12)
        if ticket["status"] == "VOID":
            canvas.setFillColorRGB(0.8, 0.1, 0.1)
            _text(canvas, left, top - 90 * mm, _("VOID - NOT VALID FOR ENTRY"), 18, bold=True)
            canvas.setFillColorRGB(0, 0, 0)
        else:
            qr = ImageReader(io.BytesIO(qr_png(ticket["payload"], scale=8)))
            size = 75 * mm
            canvas.drawImage(qr, width - 20 * mm - size, top - 120 * mm, size, size)
        _text(
            canvas,
            left,
            height - 155 * mm,
            f"Ticket #{ticket['ticket_id']} - order #{ticket['reservation_id']}",
            9,
        )
        canvas.showPage()
    canvas.save()
    return out.getvalue()
