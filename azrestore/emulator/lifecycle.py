"""A service used as a context manager, blocking or async: started on entry, stopped on
exit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["AsyncStartStop", "StartStop"]


class StartStop(ABC):
    """``with service:`` starts it and stops it again, however the block ends."""

    @abstractmethod
    def start(self) -> None:
        """Start the service (blocking until it answers)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the service and free what it held."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class AsyncStartStop(ABC):
    """``async with service:`` starts it and closes it again, however the block ends."""

    @abstractmethod
    async def start(self) -> None:
        """Start the service (until it answers)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop the service and free what it held."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
