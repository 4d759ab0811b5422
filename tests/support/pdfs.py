"""The bytes of a PDF from its objects: what every hand-made test PDF shares."""

from __future__ import annotations


def pdf_string(s: str) -> bytes:
    """`s` as a PDF string literal; U+FB01 becomes code 0x80, the "fi" ligature glyph of a font whose /Differences
    map it so (test_extract.make_pdf's).

    >>> pdf_string("a (b)")
    b'(a \\\\(b\\\\))'
    """
    raw = b"\x80".join(part.encode("cp1252") for part in s.split("\ufb01"))
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def assemble(objects: list[bytes]) -> bytes:
    """A PDF 1.4 file of `objects` (numbered from 1, the catalog first), with its cross-reference table.

    >>> assemble([b"<< /Type /Catalog >>"])[:8]
    b'%PDF-1.4'
    """
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for k, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % k + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
