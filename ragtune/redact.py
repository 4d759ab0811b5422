"""Credentials never reach a terminal, a log or a file: the one place that masks them.

A URL's password (`https://user:PASSWORD@host`) and the values of query parameters
named like a secret (`?key=`, `?api_token=`, `&sig=`) become `***`; so do words that
look like access tokens (`hf_…`, `sk-…`) and any secret the caller names (a token
from the environment). A blank secret masks nothing: replacing " " would turn every
space of a message into `***`.

>>> redact_url("http://bob:pw1234@llm.local/v1?key=abcd&model=m")
'http://bob:***@llm.local/v1?key=***&model=m'
>>> redact("401 for token hf_AbCdEfGhIjKlMnOpQrSt at http://h/v1?token=xyz1", " ")
'401 for token hf_*** at http://h/v1?token=***'
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

MASK = "***"
# Query parameters whose value is a credential (key, api_key, token, access_token, sig, password ...).
_SECRET_PARAM = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential|session", re.I)
# Hugging Face access tokens, and OpenAI-style keys (also as servers echo them, partly starred: sk-pro****abcd).
_TOKEN_WORDS = ((re.compile(r"\bhf_[A-Za-z0-9]{16,}"), "hf_"), (re.compile(r"\bsk-[\w*.-]{4,}"), "sk-"))
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")
# A secret shorter than this cannot be masked in free text without mangling ordinary words;
# it is still masked where it sits in a URL.
MIN_SECRET_CHARS = 4


def redact_url(url: str) -> str:
    """`url` with its password and the values of its secret-looking query parameters masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # an unparsable port or bracket: mask whatever sits between :// and @
        return re.sub(r"(://[^/@\s]*?:)[^/@\s]*@", rf"\g<1>{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        # user:password keeps the user name; a user name alone is often a token (https://TOKEN@host).
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}" if password is not None else f"{MASK}@{host}"
    query = (
        "&".join(
            f"{name}={MASK}" if value and _SECRET_PARAM.search(name) else (f"{name}={value}" if sep else name)
            for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
        )
        if parts.query
        else ""
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str) -> list[str]:
    """The credentials `url` carries (its password, secret-looking query values), for `redact` to mask
    where they turn up outside the URL, e.g. in a client's "nonnumeric port: 'PASSWORD@host'"."""
    try:
        parts = urlsplit(url)
        found = [parts.password if parts.password is not None else (parts.username or "")]
        found += [value for name, value in parse_qsl(parts.query, keep_blank_values=True) if _SECRET_PARAM.search(name)]
    except ValueError:
        match = re.search(r"://[^/@\s]*?:([^/@\s]*)@", url)
        found = [match[1]] if match else []
    return [s for s in found if len(s.strip()) >= MIN_SECRET_CHARS]


def redact(text: str, *secrets: str) -> str:
    """`text` with the credentials of every URL in it, token-like words and each of `secrets` masked;
    a blank or very short secret is left alone."""
    text = _URL.sub(lambda m: redact_url(m[0]), text)
    for secret in sorted({s for s in secrets if len(s.strip()) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, MASK)
        # The same secret as it appears once quoted into a URL or a repr.
        if secret.strip() != secret:
            text = text.replace(secret.strip(), MASK)
    for pattern, prefix in _TOKEN_WORDS:
        text = pattern.sub(prefix + MASK, text)
    return text
