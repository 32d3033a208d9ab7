"""Keep secrets out of logs, errors, journals and state files."""

from __future__ import annotations

import re

_SIG = re.compile(r"(?i)(\bsig=)[^&\s'\"]+")
_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*")
_ACCOUNT_KEY = re.compile(r"(?i)(\bAccountKey=)[^;\s'\"]+")
_SAS_IN_CS = re.compile(r"(?i)(\bSharedAccessSignature=)[^;\s'\"]+")

REDACTED = "REDACTED"


def redact_text(text: str) -> str:
    """Replace SAS signatures, bearer tokens and account keys in ``text`` with REDACTED."""
    for pattern in (_SIG, _BEARER, _ACCOUNT_KEY, _SAS_IN_CS):
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


def redact_url(url: str) -> str:
    """A URL fit to print: its SAS signature (``sig=``) replaced with REDACTED."""
    return _SIG.sub(rf"\g<1>{REDACTED}", url)
