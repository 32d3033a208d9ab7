"""A blocking service used as a context manager: started on entry, stopped on exit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["StartStop"]


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
