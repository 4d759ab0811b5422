"""Reading .txt and .md files: the encoding guessed, stray bytes counted, binary files told apart."""

from __future__ import annotations

import re
import unicodedata

# --- text files -------------------------------------------------------------------


def decode_text(raw: bytes) -> str:
    """Decode a .txt/.md file: BOMs first, then UTF-8, then cp1252 (latin-1 last).

    A UTF-8 file with a few stray bytes that are not UTF-8 stays UTF-8; only the
    stray bytes are read as cp1252 (`decode_text_counted` says where they were).

    >>> decode_text("caf\\u00e9".encode("utf-16")), decode_text(b"caf\\xe9 \\x93q\\x94")
    ('café', 'café “q”')
    >>> decode_text("café ".encode() + b"\\x93q\\x94")
    'café “q”'
    """
    return decode_text_counted(raw)[0]


# A byte that is not UTF-8, as errors="surrogateescape" keeps it (U+DC80-U+DCFF).
_STRAY_BYTE = re.compile(r"[\udc80-\udcff]")
# A character that took several bytes of valid UTF-8.
_UTF8_MULTIBYTE = re.compile(r"[^\x00-\x7f\udc80-\udcff]")


def _cp1252_byte(m: re.Match[str]) -> str:
    byte = bytes([ord(m.group()) - 0xDC00])
    try:
        return byte.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return byte.decode("latin-1")


def decode_text_counted(raw: bytes) -> tuple[str, dict[int, int]]:
    """`decode_text`, and {line number: stray bytes} for the lines of a UTF-8 file whose
    bytes that are not UTF-8 were read one by one as cp1252.

    >>> decode_text_counted("naïve\\n".encode() + b"caf\\xe9 \\x93q\\x94\\n")
    ('naïve\\ncafé “q”\\n', {2: 3})
    """
    boms = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
            (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]  # fmt: skip
    for bom, enc in boms:
        if raw.startswith(bom):
            return raw.decode(enc, errors="replace"), {}
    # UTF-16 without a BOM: every other byte of ASCII text is zero.
    if len(raw) >= 4 and raw.count(0) >= len(raw) // 3:
        return raw.decode("utf-16-le" if raw[1] == 0 else "utf-16-be", errors="replace"), {}
    try:
        return raw.decode("utf-8"), {}
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="surrogateescape")
    if not _UTF8_MULTIBYTE.search(text):
        # ASCII and bytes that are not UTF-8, nothing else: a single-byte encoding throughout.
        try:
            return raw.decode("cp1252"), {}
        except UnicodeDecodeError:
            return raw.decode("latin-1"), {}
    # Valid multi-byte UTF-8 too: a UTF-8 file with stray bytes (often cp1252 punctuation
    # pasted in). Reading all of it as cp1252 would garble every accent ("café" ->
    # "cafÃ©"), so only the stray bytes are; a cp1252 file decodes the same this way,
    # except where two of its bytes happen to form a UTF-8 character.
    stray = {n: k for n, line in enumerate(text.split("\n"), start=1) if (k := len(_STRAY_BYTE.findall(line)))}
    return _STRAY_BYTE.sub(_cp1252_byte, text), stray


def _looks_binary(text: str) -> bool:
    bad = sum(1 for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") and c not in "\n\r\t\f")
    return bad > 0.1 * max(1, len(text)) or text.count("\ufffd") > 0.1 * max(1, len(text))
