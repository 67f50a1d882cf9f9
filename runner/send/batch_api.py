"""HTTP for the provider's Batch API: upload a file, create, read and cancel a batch, download.

Groq (under ``/openai/v1``) and OpenAI (under ``/v1``) expose the same shapes: ``POST /files``
(multipart, ``purpose=batch``), ``POST /batches``, ``GET /batches/{id}``,
``POST /batches/{id}/cancel`` and ``GET /files/{id}/content``. The same rules as the
synchronous transport hold: TLS is always verified, redirects are never followed, the key goes
only in the ``Authorization`` header and never into an error message. Uploads stream from the
file on disk and downloads stream to disk, so neither holds a batch file in memory.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError
from urllib3.util.retry import Retry

from runner.errors import RunnerError
from runner.files import open_private
from runner.providers.endpoints import Endpoint
from runner.send.transport import RetryPolicy, Timeouts, _describe_failure
from runner.version import __version__

CHUNK = 1 << 16
# The request URL every line of a chat-completions batch names (both providers document it so,
# whatever their base URL is).
LINE_URL = "/v1/chat/completions"
# Answers worth asking again (the Batch API calls are few, so no rate limiter: urllib3 retries).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class BatchApiError(RunnerError):
    """The provider refused or could not answer a Batch API call."""


class ProviderRetry(Retry):
    """urllib3's Retry, also reading the millisecond ``retry-after-ms`` header: the Batch API
    calls retry in urllib3 (they do not go through the run's rate limiter)."""

    def get_retry_after(self, response: Any) -> float | None:
        millis = response.headers.get("retry-after-ms")
        if millis:
            try:
                return min(max(float(millis) / 1000.0, 0.0), float(self.retry_after_max))
            except (ValueError, RecursionError):
                pass
        return super().get_retry_after(response)


class BatchClient:
    """One connection pool for the Batch API calls of one command."""

    def __init__(self, retry: RetryPolicy, timeouts: Timeouts):
        self._policy = retry
        self._retry = ProviderRetry(
            total=retry.retries,
            connect=retry.retries,
            read=retry.retries,
            status=retry.retries,
            redirect=0,
            allowed_methods=frozenset({"GET", "POST"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=retry.backoff_factor,
            backoff_max=retry.backoff_max,
            backoff_jitter=retry.backoff_jitter,
            retry_after_max=retry.retry_after_max,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=2,
            cert_reqs="CERT_REQUIRED",
            timeout=urllib3.Timeout(connect=timeouts.connect, read=timeouts.read),
            retries=self._retry,
        )

    # ---- the calls

    def upload(self, endpoint: Endpoint, path: Path) -> dict[str, Any]:
        """``POST /files`` with purpose ``batch``: the file object, read from disk in chunks."""
        boundary = "runner-" + secrets.token_hex(16)
        head, tail = _multipart_frame(boundary, path.name)
        size = len(head) + path.stat().st_size + len(tail)
        headers = {
            **self._headers(endpoint),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(size),
        }
        url = _url(endpoint, "files")
        # A streamed body cannot be rewound by urllib3, so each attempt streams it afresh.
        retries = self._policy.retries
        for attempt in range(retries + 1):
            try:
                response = self._pool.request(
                    "POST",
                    url,
                    body=_stream(head, path, tail),
                    headers=headers,
                    redirect=False,
                    retries=False,
                )
            except HTTPError as exc:
                if attempt == retries:
                    raise BatchApiError(
                        f"uploading {path.name} failed: {_describe_failure(exc)}"
                    ) from None
                time.sleep(self._upload_backoff(attempt))
                continue
            if response.status in RETRY_STATUSES and attempt < retries:
                time.sleep(self._upload_backoff(attempt))
                continue
            return _json_answer(response, f"uploading {path.name}")
        raise AssertionError("unreachable")

    def create_batch(
        self, endpoint: Endpoint, file_id: str, window: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        """``POST /batches`` for a chat-completions input file."""
        body = {
            "input_file_id": file_id,
            "endpoint": LINE_URL,
            "completion_window": window,
            "metadata": metadata,
        }
        return self._json("POST", endpoint, "batches", body, f"creating a batch for {file_id}")

    def get_batch(self, endpoint: Endpoint, batch_id: str) -> dict[str, Any]:
        return self._json("GET", endpoint, f"batches/{batch_id}", None, f"reading {batch_id}")

    def cancel_batch(self, endpoint: Endpoint, batch_id: str) -> dict[str, Any]:
        return self._json(
            "POST", endpoint, f"batches/{batch_id}/cancel", None, f"cancelling {batch_id}"
        )

    def download(self, endpoint: Endpoint, file_id: str, target: Path) -> int:
        """``GET /files/{id}/content`` into ``target`` (atomically); returns its size."""
        headers = {**self._headers(endpoint), "Accept": "application/octet-stream"}
        what = f"downloading {file_id}"
        response = self._open("GET", _url(endpoint, f"files/{file_id}/content"), headers, what)
        if response.status != 200:
            _json_answer(response, what)  # raises with the provider's reason
        temp = target.with_name(f".{target.name}.tmp")
        size = 0
        try:
            with open_private(temp, "wb") as handle:
                for chunk in response.stream(CHUNK):
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except HTTPError as exc:
            temp.unlink(missing_ok=True)
            raise BatchApiError(f"{what} failed: {_describe_failure(exc)}") from None
        finally:
            response.release_conn()
        return size

    def close(self) -> None:
        self._pool.clear()

    # ---- plumbing

    def _upload_backoff(self, attempt: int) -> float:
        """Seconds before sending an upload again: the policy's exponential backoff (no
        jitter), as urllib3 waits for the other calls."""
        return min(self._policy.backoff_factor * 2**attempt, self._policy.backoff_max)

    def _json(
        self, method: str, endpoint: Endpoint, path: str, body: Any, what: str
    ) -> dict[str, Any]:
        headers = {**self._headers(endpoint), "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        response = self._open(method, _url(endpoint, path), headers, what, data, preload=True)
        return _json_answer(response, what)

    def _open(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        what: str,
        body: bytes | None = None,
        preload: bool = False,
    ) -> Any:
        try:
            return self._pool.request(
                method,
                url,
                body=body,
                headers=headers,
                redirect=False,
                retries=self._retry,
                preload_content=preload,
            )
        except MaxRetryError as exc:
            raise BatchApiError(f"{what} failed: {_describe_failure(exc.reason)}") from None
        except HTTPError as exc:
            raise BatchApiError(f"{what} failed: {_describe_failure(exc)}") from None

    @staticmethod
    def _headers(endpoint: Endpoint) -> dict[str, str]:
        headers = {"User-Agent": f"runner/{__version__}"}
        if endpoint.api_key is not None:
            headers["Authorization"] = f"Bearer {endpoint.api_key.reveal()}"
        return headers


def _url(endpoint: Endpoint, path: str) -> str:
    return f"{(endpoint.base_url or '').rstrip('/')}/{path}"


def _multipart_frame(boundary: str, filename: str) -> tuple[bytes, bytes]:
    """What goes before and after the file's bytes in a multipart/form-data body."""
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="purpose"\r\n\r\n'
        "batch\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def _stream(head: bytes, path: Path, tail: bytes) -> Iterator[bytes]:
    yield head
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
    yield tail


def _json_answer(response: Any, what: str) -> dict[str, Any]:
    """The JSON object of a 200 answer; BatchApiError with the provider's reason otherwise."""
    data = response.data
    try:
        payload = json.loads(data or b"null")
    except (ValueError, RecursionError):
        payload = None
    if response.status == 200 and isinstance(payload, dict):
        return payload
    if 300 <= response.status < 400:
        raise BatchApiError(
            f"{what}: the provider answered with a redirect ({response.status}) to "
            f"{response.headers.get('location')}; it is not followed (check the base URL)"
        )
    reason = ""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        reason = str(payload["error"].get("message") or "")
    if response.status == 401:
        reason = reason or "the API key was refused"
    detail = f": {reason}" if reason else ""
    if response.status == 200:
        detail = ": the answer is not a JSON object"
    raise BatchApiError(f"{what} failed (HTTP {response.status}){detail}")
