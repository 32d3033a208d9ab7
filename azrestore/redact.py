"""Keep secrets out of logs, errors, journals and state files."""

from __future__ import annotations

import re

_SIG = re.compile(r"(?i)(\bsig=)[^&\s'\"]+")
_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*")
_ACCOUNT_KEY = re.compile(r"(?i)(\bAccountKey=)[^;\s'\"]+")
_SAS_IN_CS = re.compile(r"(?i)(\bSharedAccessSignature=)[^;\s'\"]+")
#: ``scheme://user:password@``: a proxy's (or any URL's) password.
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/@:\s'\"]*:)[^/@\s'\"]+(?=@)")
#: ``Proxy-Authorization: Basic ...`` (and Authorization: Basic) in dumped headers.
_BASIC = re.compile(r"(?i)(\bbasic\s+)[A-Za-z0-9+/]{8,}=*")

REDACTED = "REDACTED"


def redact_text(text: str) -> str:
    """Replace SAS signatures, bearer tokens, account keys, Basic credentials and the
    passwords of ``user:password@`` URLs in ``text`` with REDACTED."""
    for pattern in (_SIG, _BEARER, _ACCOUNT_KEY, _SAS_IN_CS, _USERINFO, _BASIC):
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


def redact_url(url: str) -> str:
    """A URL fit to print: its SAS signature (``sig=``) and the password of its
    ``user:password@`` replaced with REDACTED."""
    return _USERINFO.sub(rf"\g<1>{REDACTED}", _SIG.sub(rf"\g<1>{REDACTED}", url))
