"""A filing's statement of figures as a real PDF: each cell drawn at its own place on the row's line, as
filings print them, so that pypdf's extraction writes a row the way it does for a 10-K."""

from __future__ import annotations

from .pdfs import assemble, pdf_string

YEARS = ("2022", "2021", "2020")
# An income statement's rows: a label, and a figure for each of YEARS ("Net sales:" heads a group).
ROWS = [
    ("Net sales:", ()),
    ("Products", ("316,199", "297,392", "220,747")),
    ("Services", ("78,129", "68,425", "53,768")),
    ("Total net sales", ("394,328", "365,817", "274,515")),
    ("Cost of sales", ("223,546", "212,981", "169,559")),
    ("Gross margin", ("170,782", "152,836", "104,956")),
    ("Research and development", ("26,251", "21,914", "18,752")),
    ("Selling, general and administrative", ("25,094", "21,973", "19,916")),
    ("Total operating expenses", ("51,345", "43,887", "38,668")),
    ("Operating income", ("119,437", "108,949", "66,288")),
    ("Other income/(expense), net", ("(334)", "258", "803")),
    ("Income before provision for income taxes", ("119,103", "109,207", "67,091")),
    ("Provision for income taxes", ("19,300", "14,527", "9,680")),
    ("Net income", ("99,803", "94,680", "57,411")),
]
# Prose that names years and figures, but no table.
PROSE = (
    "The Company designs, manufactures and markets smartphones, personal computers, tablets,",
    "wearables and accessories, and sells a variety of related services. The fiscal year is",
    "the 52- or 53-week period that ends on the last Saturday of September.",
    "Net sales increased during 2022 compared to 2021 and 2020, due primarily to products.",
    "Operating expenses grew 14% in 2022 and 12 percent in 2021, driven by research.",
)


def _page(lines: list[list[tuple[int, str]]]) -> bytes:
    """Content drawing each line's (x, text) cells on one baseline, 14 points below the line before."""
    ops = [b"BT /F1 10 Tf"]
    for i, cells in enumerate(lines):
        ops += [b"1 0 0 1 %d %d Tm " % (x, 760 - 14 * i) + pdf_string(text) + b" Tj" for x, text in cells]
    return b"\n".join([*ops, b"ET"])


def filing_pdf() -> bytes:
    """Two pages: prose, then the income statement under a header of YEARS, each figure after a "$"."""
    statement = [[(72, "CONSOLIDATED STATEMENTS OF OPERATIONS")], [(72, "(In millions, except per-share amounts)")]]
    statement.append([(72, "Years ended")] + [(330 + 80 * j, year) for j, year in enumerate(YEARS)])
    for label, figures in ROWS:
        statement.append(
            [(72, label)] + [cell for j, f in enumerate(figures) for cell in ((320 + 80 * j, "$"), (335 + 80 * j, f))]
        )
    pages = [_page([[(72, line)] for line in PROSE]), _page(statement)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(pages))) + b"] /Count 2 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, ops in enumerate(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
    return assemble(objects)
