"""Outside tools the tests drive (qemu-img, mkfs, sgdisk, Azurite...): skip where a developer
lacks one, fail in CI, where `make install` must have provided it.

A test that skips in CI is a test that cannot fail, so in CI (``CI`` set) every helper here
fails instead of skipping. The only exceptions are the ones listed in
:data:`NOT_INSTALLABLE`: tools that no registry this project's machines reach provides.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

#: Tools that cannot be installed on the project's machines, with the reason: a test that
#: needs one skips everywhere, saying so.
NOT_INSTALLABLE: dict[str, str] = {
    "pwsh": "PowerShell has no package in the registries this project's machines reach",
}


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set), where a missing tool is a failure."""
    return bool(os.environ.get("CI"))


def missing(*tools: str) -> list[str]:
    """The tools of ``tools`` that are not on ``PATH``."""
    return [tool for tool in tools if shutil.which(tool) is None]


def unavailable(reason: str) -> NoReturn:
    """Skip the running test because the machine lacks ``reason``; in CI, fail it."""
    if in_ci():
        pytest.fail(f"CI must provide this (make install): {reason}", pytrace=False)
    pytest.skip(reason)


def require(*tools: str) -> None:
    """Inside a test or fixture: skip (in CI, fail) unless every tool is on ``PATH``."""
    absent = missing(*tools)
    if not absent:
        return
    for tool in absent:
        if tool in NOT_INSTALLABLE:
            pytest.skip(f"{tool}: {NOT_INSTALLABLE[tool]}")
    unavailable(f"not installed: {', '.join(absent)}")


def needs(*tools: str) -> pytest.MarkDecorator:
    """A mark for tests that need ``tools``: ``conftest.py`` calls :func:`require` for it
    before the test runs (skipped without them; failed in CI)."""
    return pytest.mark.tools(*tools)
