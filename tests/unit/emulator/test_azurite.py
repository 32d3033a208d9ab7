"""Finding Azurite."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.emulator import azurite as azurite_module
from azrestore.emulator.azurite import EmulatorError, find_azurite


def test_find_azurite_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AZRESTORE_AZURITE", str(tmp_path / "nothing"))
    monkeypatch.setattr(azurite_module, "_BUNDLED", tmp_path / "also-nothing")
    with pytest.raises(EmulatorError, match="make install"):
        find_azurite()
