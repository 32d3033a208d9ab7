"""Connections to one NBD export, handed to worker threads one at a time: a thread that
reads checks one out (opening another while under the limit), and gives it back after.

A server that takes fewer connections than the limit (``qemu-nbd`` without ``--shared``
takes one) is found out when an extra connection does not get its handshake in time: the
limit drops to the connections that work, and threads then wait their turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .client import NbdClient, NbdError

#: Seconds an extra connection (beyond the first) may take before the server is taken to
#: refuse more connections.
EXTRA_TIMEOUT = 5.0


class ConnectionPool:
    """At most ``limit`` connections made by ``connect(timeout)``; ``first`` is the one
    made when the source was opened."""

    def __init__(
        self, connect: Callable[[float], NbdClient], first: NbdClient, *, limit: int
    ) -> None:
        self._connect = connect
        self._idle = [first]
        self._open = 1
        self._limit = max(1, limit)
        self._closed = False
        self._lock = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @contextmanager
    def client(self) -> Iterator[NbdClient]:
        """A connection for this thread alone. One that fails is closed, not given back:
        its stream may be in the middle of a reply."""
        client = self._take()
        try:
            yield client
        except BaseException:
            self._drop(client)
            raise
        with self._lock:
            if self._closed:
                client.close()
            else:
                self._idle.append(client)
                self._lock.notify()

    def _take(self) -> NbdClient:
        while True:
            with self._lock:
                while not self._idle and self._open >= self._limit and not self._closed:
                    self._lock.wait()
                if self._closed:
                    raise NbdError("the source is closed")
                if self._idle:
                    return self._idle.pop()
                self._open += 1
                extra = self._open > 1
            try:
                return self._connect(EXTRA_TIMEOUT if extra else 30.0)
            except (OSError, NbdError):
                with self._lock:
                    self._open -= 1
                    if not extra or self._open == 0:
                        raise
                    self._limit = self._open  # the server takes no more: share these

    def _drop(self, client: NbdClient) -> None:
        client.close()
        with self._lock:
            self._open -= 1
            self._lock.notify()

    def close(self) -> None:
        """Close every idle connection; those checked out close when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for client in idle:
            client.close()
