"""The gateway's operation names for requests."""

from __future__ import annotations

import pytest

from azrestore.emulator.storage import classify_operation


@pytest.mark.parametrize(
    ("method", "query", "headers", "expected"),
    [
        ("PUT", {"comp": "page"}, {"x-ms-page-write": "update"}, "PutPage"),
        ("PUT", {"comp": "page"}, {"x-ms-page-write": "Clear"}, "ClearPage"),
        ("PUT", {}, {"x-ms-blob-type": "PageBlob"}, "PutBlob"),
        ("PUT", {"restype": "container"}, {}, "CreateContainer"),
        ("PUT", {"comp": "properties"}, {}, "Other"),
        ("GET", {"comp": "pagelist"}, {}, "GetPageRanges"),
        ("GET", {}, {}, "GetBlob"),
        ("HEAD", {}, {}, "GetBlobProperties"),
        ("DELETE", {}, {}, "DeleteBlob"),
        ("DELETE", {"restype": "container"}, {}, "Other"),
        ("GET", {"restype": "container", "comp": "list"}, {}, "Other"),
    ],
)
def test_classify_operation(
    method: str, query: dict[str, str], headers: dict[str, str], expected: str
) -> None:
    assert classify_operation(method, query, headers) == expected
