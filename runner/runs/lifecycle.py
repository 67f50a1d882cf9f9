"""What Ctrl-C and SIGTERM mean to a run, and how the run hears them.

A run goes through plan, send, drain, close and finish (runner/runs/execute.py). The signal
handler only notes a signal; the run's main loop acts on it between steps, so no exception
tears through a half-written manifest or closes what a worker still writes to:

- the first Ctrl-C or SIGTERM stops sending: requests waiting for their turn give up, the
  answers in flight are awaited and saved, and the run finishes its results and manifest;
- a second signal, or a SIGTERM whose requests are still in flight after ``TERM_GRACE``
  seconds, abandons what is in flight at once: those connections are closed and the requests
  are left for ``--resume`` (a provider may still bill what it had started to answer);
- signals during the finish (results file and manifest) wait until it is done.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TERM_GRACE = 5.0  # seconds a SIGTERM lets the answers in flight arrive before abandoning them


class StopRequests:
    """The stop signals a run received, noted by the handler and read by the run's loop."""

    def __init__(self, grace: float = TERM_GRACE) -> None:
        self.received: list[int] = []
        self.grace = grace
        self._first_at: float | None = None

    def note(self, signum: int) -> None:
        """A signal arrived (called by the handler, or by code that caught KeyboardInterrupt)."""
        if self._first_at is None:
            self._first_at = time.monotonic()
        self.received.append(signum)

    @property
    def stop(self) -> bool:
        """Send nothing more."""
        return bool(self.received)

    def abandon(self) -> bool:
        """Stop waiting for the answers in flight."""
        if len(self.received) >= 2:
            return True
        return (
            self.received == [signal.SIGTERM]
            and self._first_at is not None
            and time.monotonic() - self._first_at >= self.grace
        )

    @property
    def terminated(self) -> bool:
        return signal.SIGTERM in self.received

    @property
    def name(self) -> str:
        return "SIGTERM" if self.received[:1] == [signal.SIGTERM] else "SIGINT"

    @contextmanager
    def listening(self) -> Iterator[StopRequests]:
        """Note SIGINT and SIGTERM instead of raising, for the block (main thread only; a
        SIGINT the caller ignores stays ignored)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous: dict[int, Any] = {}
        signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
        for signum in signums:
            handler = signal.getsignal(signum)
            if handler is signal.SIG_IGN and signum == signal.SIGINT:
                continue
            previous[signum] = handler
            signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.note(signum)
