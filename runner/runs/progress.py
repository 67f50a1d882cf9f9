"""What a run shows while it goes: done and total, rate, ETA, counts, and the current wait.

The executor calls a ``RunProgress`` once with the number of requests (``progress.start(n)``),
with each saved record (``progress(record, done, total)``), with each change of wait
(``progress.waiting(wait)``, a ``ratelimit.Wait`` or None), with each attempt that failed and is
sent again (``progress.retrying(reason)``, so a run whose every request fails and is retried
still shows that it goes) and once at the end (``progress.close()``). On a terminal the facts
ride on click's progress bar; elsewhere (CI logs, a pipe) one line goes to stderr every few
seconds with the same facts, also when nothing happened since (a heartbeat: a run whose
requests all hang until ``--timeout`` still prints). ``--quiet`` shows nothing (the CLI then
passes no progress at all).
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import click

from runner.errors import plural
from runner.send.ratelimit import Wait, describe_seconds

# Seconds between two progress lines when stderr is not a terminal (RUNNER_PROGRESS_EVERY).
DEFAULT_EVERY = 5.0
# What click draws before our text, "  [" + 20-column bar + "]  ", and one spare column.
BAR_COLUMNS = 27


class RunProgress:
    """Counts of a run and how it is shown; safe to call from any worker thread."""

    def __init__(
        self,
        stream: TextIO | None = None,
        terminal: bool | None = None,
        every: float = DEFAULT_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._stream = stream or sys.stderr
        self._terminal = self._stream.isatty() if terminal is None else terminal
        self._every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_line = self._started  # the first line after ``every`` seconds
        self._lines = 0
        self.total = 0
        self.done = 0
        self.counts = {"ok": 0, "failed": 0, "invalid_output": 0}
        self.wait: Wait | None = None
        self._wait_until = 0.0
        self.retries = 0  # attempts sent again so far
        self.last_retry: str | None = None  # why the latest one failed: "HTTP 529", ...
        self._bar: Any = None
        self._ended = threading.Event()
        self._beat: threading.Thread | None = None

    # ---- called by the executor

    def start(self, total: int) -> None:
        with self._lock:
            self.total = total
        if not self._terminal and self._every > 0 and self._beat is None:
            self._beat = threading.Thread(target=self._heartbeat, name="progress", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        """A line every ``every`` seconds in which nothing else printed one."""
        while not self._ended.wait(self._every):
            with self._lock:
                if self._clock() - self._last_line >= self._every:
                    self._line()

    def __call__(self, record: dict[str, Any], done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = done, total
            status = record.get("status", "failed")
            self.counts[status] = self.counts.get(status, 0) + 1
            self._show(1)

    def waiting(self, wait: Wait | None) -> None:
        with self._lock:
            if wait is None and self.wait is None:
                return
            self.wait = wait
            self._wait_until = self._clock() + wait.seconds if wait else 0.0
            self._show(0)

    def retrying(self, reason: str) -> None:
        with self._lock:
            self.retries += 1
            self.last_retry = " ".join(reason.split())[:80]
            self._show(0)

    def close(self) -> None:
        self._ended.set()
        if self._beat is not None:
            self._beat.join()
        with self._lock:
            self.wait = None
            if self._bar is not None:
                self._bar.render_progress()
                self._bar.render_finish()
            elif self._lines:
                self._line()

    # ---- what is shown

    def describe(self) -> str:
        """The facts in one line: ``120/1000 (12%), 11.9/s, ETA 1m14s; 118 ok, 2 failed,
        0 invalid; waiting 12 s for the tokens-per-minute limit of openai/gpt-oss-120b``."""
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.done}/{self.total}"]
        if self.total:
            parts[0] += f" ({100 * self.done // self.total}%)"
        parts.append(f"{rate:.1f}/s")
        left = self.total - self.done
        if rate > 0 and left > 0:
            parts.append(f"ETA {describe_seconds(left / rate)}")
        text = ", ".join(parts) + "; " + self._counts()
        if self.retries:
            again = plural(self.retries, "attempt")
            text += f"; {again} sent again, the last after {self.last_retry}"
        wait = self._current_wait()
        return f"{text}; {wait.describe()}" if wait else text

    def _counts(self) -> str:
        counts = self.counts
        return f"{counts['ok']} ok, {counts['failed']} failed, {counts['invalid_output']} invalid"

    def _current_wait(self) -> Wait | None:
        if self.wait is None:
            return None
        left = max(self._wait_until - self._clock(), 0.0)
        return Wait(self.wait.limit, self.wait.model, left)

    def _show(self, steps: int) -> None:
        if self._terminal:
            self._bar_update(steps)
        elif self._clock() - self._last_line >= self._every:
            self._line()

    def _line(self) -> None:
        self._last_line = self._clock()
        self._lines += 1
        click.echo(f"progress: {self.describe()}", file=self._stream)

    def _bar_update(self, steps: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=max(self.total, 1),
                file=self._stream,
                show_eta=False,  # the ETA is in our own line, with the rate
                show_pos=False,
                show_percent=False,
                item_show_func=lambda _: self._bar_text(),
                width=20,
            )
        if steps:
            self._bar.update(steps)
        else:
            self._bar.render_progress()

    def _bar_text(self) -> str:
        # A line wider than the terminal wraps, and every redraw of a wrapped line scrolls the
        # screen instead of overwriting it: cut the text to what fits beside the bar.
        # When it does not fit, the count and the current wait are what matter most.
        room = shutil.get_terminal_size().columns - BAR_COLUMNS
        text = self.describe()
        if len(text) > room and (wait := self._current_wait()):
            text = f"{self.done}/{self.total}; {wait.describe()}"
        return text if len(text) <= room else text[: max(room - 3, 0)] + "..."


def progress_for(quiet: bool, every: float | None = None) -> RunProgress | None:
    """The progress display ``runner run`` shows on stderr; None with ``--quiet``."""
    if quiet:
        return None
    return RunProgress(every=DEFAULT_EVERY if every is None else every)
