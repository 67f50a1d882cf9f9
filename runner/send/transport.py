"""HTTP to an OpenAI-compatible endpoint: one urllib3 pool, timeouts, one attempt per call.

``post_chat`` sends exactly one attempt and never raises for I/O; retrying is the caller's
job (``runner/retry.py``), so that every attempt goes through the run's rate limiter. TLS
certificates are always verified. Every attempt, whole or streamed, ends by ``--timeout`` from
its start however the server drips its bytes (``runner/send/cutoff.py``), and ``abandon``
ends every attempt in flight at once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from runner.providers.endpoints import Endpoint
from runner.send.cutoff import ABANDONED, DEADLINE, Attempts, Cutoff, watched_pool_manager
from runner.send.ratelimit import out_of_credit
from runner.send.stream import StreamFailure
from runner.version import __version__

RETRY_STATUSES = frozenset({408, 429, 498})
# 5xx is the provider's (or a proxy's) own trouble, and passes: 529 "overloaded" as much as 503.
# Only these two say the server will never serve the request, however often it is sent.
NEVER_RETRIED_5XX = frozenset({501, 505})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try after 5xx and dropped connections: retries, and the backoff between.

    A 429 is not counted here: the request waits for its turn at the rate limiter and is sent
    again, as long as the provider's waits stay within the run's ``--max-wait``.
    """

    retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    # For urllib3's own retries (the Batch API calls in batch_api.py).
    backoff_jitter: float = 0.5
    retry_after_max: int = 120

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based): exponential, with jitter."""
        base = min(self.backoff_factor * 2 ** (retry - 1), self.backoff_max)
        return base * random.uniform(0.5, 1.5)


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect, for a whole answer, and (streams) the longest wait for a chunk."""

    connect: float = 10.0
    read: float = 120.0
    idle: float = 30.0


@dataclass(frozen=True)
class HttpResult:
    """What came back for one request: status, headers, body text, and how it went."""

    status: int | None
    headers: dict[str, str]
    text: str | None
    attempts: int
    error: str | None = None
    limit: str | None = None  # the limit that ended it: "--timeout", "--idle-timeout"
    abandoned: bool = False  # cut because the run stopped for good: it has no answer

    def json(self) -> Any:
        return json.loads(self.text or "")


class HttpClient:
    """A keep-alive connection pool shared by every request of a run."""

    def __init__(self, timeouts: Timeouts, pool_size: int = 10):
        self._pools: dict[str, tuple[Any, str]] = {}
        self._whole = timeouts.read
        # A stream waits at most the idle timeout for each read, the headers included.
        self._idle = min(timeouts.idle, timeouts.read)
        self._idle_option = "--idle-timeout" if timeouts.idle <= timeouts.read else "--timeout"
        self._stream_timeout = urllib3.Timeout(connect=timeouts.connect, read=self._idle)
        self._attempts = Attempts()
        self._pool = watched_pool_manager(
            num_pools=4,
            maxsize=pool_size,
            block=False,
            cert_reqs="CERT_REQUIRED",
            timeout=urllib3.Timeout(connect=timeouts.connect, read=timeouts.read),
            retries=False,
        )

    def post_chat(self, endpoint: Endpoint, body: bytes) -> HttpResult:
        """POST one request body to the endpoint's /chat/completions once; never raises for I/O."""
        headers = self._headers(endpoint, "application/json")
        with self.attempt() as cutoff:
            try:
                # Redirects are never followed: neither the key nor the prompt goes to an
                # address the user did not name. The 3xx comes back as the answer, explained.
                pool, path = self._pool_for(endpoint.completions_url)
                response = pool.urlopen(
                    "POST", path, body=body, headers=headers, redirect=False, retries=False
                )
            except HTTPError as exc:
                return self.failed(cutoff, _describe_failure(exc))
            if cutoff.reason is not None:  # cut as the body ended: it may be short
                return self.failed(cutoff, "")
            text = response.data.decode("utf-8", errors="replace")
        return HttpResult(
            response.status, {k.lower(): v for k, v in response.headers.items()}, text, 1
        )

    def attempt(self) -> AbstractContextManager[Cutoff]:
        """The scope of one attempt: cut at ``--timeout`` from now, or when abandoned."""
        return self._attempts.attempt(self._whole)

    def failed(self, cutoff: Cutoff, error: str) -> HttpResult:
        """The result of an attempt that failed with ``error``, or that was cut."""
        if cutoff.reason == DEADLINE:
            return HttpResult(None, {}, None, 1, self.deadline_message(), limit="--timeout")
        if cutoff.reason == ABANDONED:
            return HttpResult(None, {}, None, 1, ABANDONED_MESSAGE, abandoned=True)
        if error == self.never_started():
            return HttpResult(None, {}, None, 1, error, limit=self._idle_option)
        limit = "--timeout" if "read timeout" in error else None
        return HttpResult(None, {}, None, 1, error, limit=limit)

    def never_started(self) -> str:
        """Why a streamed request failed whose answer did not begin within the idle timeout."""
        return (
            f"the stream never started: no answer within {self._idle:g} s of sending "
            f"({self._idle_option}, the longest wait for a stream's first byte and each chunk)"
        )

    def deadline_message(self) -> str:
        return (
            f"no whole answer within {self._whole:g} s (--timeout, the limit for one attempt "
            "from sending to the last byte)"
        )

    def abandon(self) -> None:
        """End every attempt in flight now, and every later one at its start."""
        self._attempts.abandon()

    def open_stream(self, endpoint: Endpoint, body: bytes) -> StreamResponse:
        """POST a ``stream: true`` body; on a 200 event stream, ``pieces`` yields its raw bytes
        as they arrive, each read waiting at most the idle timeout (I/O errors while reading
        are StreamFailures), and is closed when the stream is left. Any other answer is read
        whole into ``text``. Never raises. Call it inside ``attempt()``, which bounds it all."""
        headers = self._headers(endpoint, "text/event-stream")
        try:
            pool, path = self._pool_for(endpoint.completions_url)
            response = pool.urlopen(
                "POST",
                path,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=self._stream_timeout,
                preload_content=False,
            )
        except HTTPError as exc:
            if "Read timed out" in str(exc):  # not a byte of the answer: it never started
                return StreamResponse(None, {}, 1, error=self.never_started())
            return StreamResponse(None, {}, 1, error=_describe_failure(exc))
        found = {k.lower(): v for k, v in response.headers.items()}
        attempts = 1
        if response.status == 200 and found.get("content-type", "").startswith("text/event-stream"):
            return StreamResponse(200, found, attempts, pieces=StreamBody(response, self._idle))
        try:
            text = response.data.decode("utf-8", errors="replace")
        except HTTPError as exc:
            return StreamResponse(None, found, attempts, error=_describe_failure(exc))
        finally:
            response.release_conn()
        return StreamResponse(response.status, found, attempts, text=text)

    def _headers(self, endpoint: Endpoint, accept: str) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": accept,
            "User-Agent": f"runner/{__version__}",
        }
        if endpoint.api_key is not None:
            headers["Authorization"] = f"Bearer {endpoint.api_key.reveal()}"
        return headers

    def _pool_for(self, url: str) -> tuple[Any, str]:
        """The keep-alive pool for a URL's host, and the URL's path (looked up once per URL)."""
        found = self._pools.get(url)
        if found is None:
            found = (self._pool.connection_from_url(url), urllib3.util.parse_url(url).request_uri)
            self._pools[url] = found
        return found

    def close(self) -> None:
        self._attempts.close()
        self._pool.clear()


ABANDONED_MESSAGE = "abandoned in flight: the run was stopped for good (a second Ctrl-C or SIGTERM)"


@dataclass(frozen=True)
class StreamResponse:
    """The start of a streamed answer: a 200 event stream's ``pieces``, or a whole ``text``."""

    status: int | None
    headers: dict[str, str]
    attempts: int
    pieces: StreamBody | None = None
    text: str | None = None
    error: str | None = None


class StreamBody:
    """A 200 event stream's bytes as they arrive (one HTTP chunk at a time when chunked).

    ``close`` must be called when the stream is left, however it was left: a stream that
    ended well lets its connection go back to the pool; any other closes it, so the provider
    stops generating (and billing) an answer nobody reads.
    """

    TAIL = 65536  # read after [DONE] at most this much of what follows, to reuse the connection

    def __init__(self, response: Any, idle: float):
        self._response = response
        self._idle = idle
        self._closed = False
        self._pieces = self._read()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._pieces)

    def _read(self) -> Generator[bytes, None, None]:
        response = self._response
        try:
            if response.chunked and response.supports_chunked_reads():
                yield from response.read_chunked(decode_content=True)
            else:
                while data := response.read1(65536):
                    yield data
        except (HTTPError, OSError) as exc:
            self._drop()
            if "timed out" in str(exc):
                raise StreamFailure(
                    "connection",
                    f"no chunk of the stream for {self._idle:g} s (--idle-timeout)",
                    limit="--idle-timeout",
                ) from None
            raise StreamFailure(
                "connection", "the stream was cut off: " + _describe_failure(exc)
            ) from None

    def close(self, ended_well: bool = False) -> None:
        """Let the connection go: back to the pool when the stream ended well and the little
        that follows its end is read, closed otherwise."""
        if self._closed:
            return
        self._closed = True
        if ended_well and self._rest_is_short():
            self._response.release_conn()
            return
        self._pieces.close()
        self._drop()

    def _drop(self) -> None:
        self._closed = True
        self._response.close()
        self._response.release_conn()

    def _rest_is_short(self) -> bool:
        """Read what follows the end of the stream, if that is at most TAIL bytes."""
        seen = 0
        try:
            for piece in self._pieces:
                seen += len(piece)
                if seen > self.TAIL:
                    return False
        except StreamFailure:
            return False
        return True


def retryable(result: HttpResult) -> bool:
    """Whether sending the same request again may succeed: 5xx (not 501 or 505), 408, 498,
    dropped connections."""
    status = result.status
    if status is None:
        return not (result.error or "").startswith("TLS certificate")
    if 500 <= status <= 599:
        return status not in NEVER_RETRIED_5XX
    if status == 429:
        return not out_of_credit(result.text or "")
    return status in RETRY_STATUSES


def _describe_failure(reason: Exception | None) -> str:
    text = str(reason) if reason else "unknown error"
    if "Read timed out" in text:
        return "no answer before the read timeout (the provider is slow or stuck)"
    if "Connection refused" in text:
        return "connection refused (is the server running and the base URL right?)"
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
        return f"TLS certificate verification failed: {text}"
    if "Connection broken" in text or "IncompleteRead" in text:
        return "the provider's answer was cut off (the connection closed mid-answer)"
    if "Connection aborted" in text or "ConnectionResetError" in text or "reset by peer" in text:
        return "the provider closed the connection before answering (connection reset)"
    return f"connection failed: {text}"
