"""The ``env`` fixture of the simulator's contract tests: a fresh simulator per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from azrestore.emulator.azurite import AzuriteProcess
from tests.support.arm.env import ArmEnv, arm_env


@pytest.fixture
async def env(azurite: AzuriteProcess) -> AsyncIterator[ArmEnv]:
    async with arm_env(azurite) as environment:
        yield environment
