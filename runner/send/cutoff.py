"""Ending an attempt from outside: at its deadline, or when the run abandons what is in flight.

urllib3's timeouts bound each socket read, not a whole answer: a server that sends a byte every
half second keeps a request alive for as long as it likes. So each attempt gets a ``Cutoff``:
the connection it uses is noted when the request goes out (a connection class of our own
reports itself), and one watchdog thread shuts that socket down when the attempt's deadline
passes. Whatever reads from it (headers, a whole body, a stream) then fails at once, and the
cutoff says which limit fired. A run stopping for good (a second Ctrl-C, SIGTERM past its
grace) cuts every attempt in flight the same way.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

DEADLINE = "deadline"
ABANDONED = "abandoned"

_current = threading.local()  # the Cutoff of the attempt this thread is sending


class Cutoff:
    """One attempt's connection, and why it was cut (None while it was not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None
        self.reason: str | None = None

    def attach(self, connection: Any) -> None:
        with self._lock:
            self._connection = connection
            if self.reason is not None:
                _shut(connection)

    def cut(self, reason: str) -> None:
        """End the attempt now: whatever waits on its socket fails at once."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            if self._connection is not None:
                _shut(self._connection)

    def detach(self) -> None:
        """The attempt is over: its connection may serve another request, and is not cut."""
        with self._lock:
            self._connection = None


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    # The plain socket's shutdown, also for TLS: it wakes a read in another thread without
    # touching the TLS state that thread is using.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Reporting:
    """A connection that tells the current attempt's Cutoff that it carries the request."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        cutoff = getattr(_current, "cutoff", None)
        if cutoff is not None:
            cutoff.attach(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        cutoff = getattr(_current, "cutoff", None)
        if cutoff is not None and cutoff.reason is not None:
            _shut(self)  # cut while it was connecting: the socket exists only now
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Reporting, HTTPConnection):
    pass


class _HTTPSConnection(_Reporting, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def watched_pool_manager(**kwargs: Any) -> urllib3.PoolManager:
    """A PoolManager whose connections report to the attempt that uses them."""
    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager


class Attempts:
    """The attempts in flight of one client: each with a deadline, all cut at once on demand."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, Cutoff]] = []
        self._live: set[Cutoff] = set()
        self._order = itertools.count()
        self._abandoned = False
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def attempt(self, seconds: float) -> Iterator[Cutoff]:
        """One attempt, cut when ``seconds`` have passed (the block's requests go through a
        connection of ``watched_pool_manager``)."""
        cutoff = Cutoff()
        with self._lock:
            if self._abandoned:
                cutoff.cut(ABANDONED)
            self._live.add(cutoff)
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), cutoff))
            self._start()
            self._lock.notify_all()
        _current.cutoff = cutoff
        try:
            yield cutoff
        finally:
            _current.cutoff = None
            cutoff.detach()
            with self._lock:
                self._live.discard(cutoff)

    def abandon(self) -> None:
        """Cut every attempt in flight, and every later one at its start."""
        with self._lock:
            self._abandoned = True
            live = list(self._live)
        for cutoff in live:
            cutoff.cut(ABANDONED)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, name="runner-deadlines", daemon=True
            )
            self._thread.start()

    def _watch(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                while self._heap and (
                    self._heap[0][2] not in self._live or self._heap[0][0] <= now
                ):
                    _, _, cutoff = heapq.heappop(self._heap)
                    if cutoff in self._live:
                        cutoff.cut(DEADLINE)
                wait = self._heap[0][0] - now if self._heap else None
                self._lock.wait(wait)
