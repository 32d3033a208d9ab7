"""Which Blob service operation a request is: the names fault rules, checks and statistics
use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

__all__ = ["OPERATIONS", "Operation", "classify_operation"]

Operation = Literal[
    "PutBlob",
    "PutPage",
    "ClearPage",
    "GetPageRanges",
    "GetBlob",
    "GetBlobProperties",
    "DeleteBlob",
    "CreateContainer",
    "Other",
]
OPERATIONS: Final[tuple[str, ...]] = get_args(Operation)


def classify_operation(method: str, query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The gateway's operation name for one request (one of :data:`OPERATIONS`).

    ``query`` and ``headers`` are looked up by lower-case query name and (case-insensitive)
    header name.
    """
    comp = query.get("comp")
    restype = query.get("restype")
    method = method.upper()
    if method == "PUT":
        if comp == "page":
            write = headers.get("x-ms-page-write", "update").lower()
            return "ClearPage" if write == "clear" else "PutPage"
        if restype == "container" and comp is None:
            return "CreateContainer"
        if comp is None and restype is None and "x-ms-blob-type" in headers:
            return "PutBlob"
        return "Other"
    if comp is None and restype is None:
        if method == "GET":
            return "GetBlob"
        if method == "HEAD":
            return "GetBlobProperties"
        if method == "DELETE":
            return "DeleteBlob"
    if method == "GET" and comp == "pagelist":
        return "GetPageRanges"
    return "Other"
