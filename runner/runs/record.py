"""One record per request: what was asked, what came back, and what it means.

A record is plain JSON (it is saved as is): the spec, case and variables it came from, the
request body as sent, the provider's raw answer, the parsed and checked output, usage, timing,
attempts and, when something went wrong, an error with its kind and a sentence a person can act
on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.grade.output import MalformedResponse, check_response
from runner.grade.score import score_record
from runner.providers.endpoints import Endpoint
from runner.runs.cache import request_key
from runner.runs.store import utc_now
from runner.send.explain_http import body_excerpt, explain_http_error
from runner.send.stream import StreamFailure, StreamTiming
from runner.send.transport import HttpResult
from runner.spec.objects import Spec
from runner.spec.render import Request


@dataclass(frozen=True)
class Attempt:
    """How one request went on the wire (or in the cache): result, start time, latency, and
    for a streamed request its timing, or the failure that cut it off and the text before."""

    result: HttpResult
    started_at: str
    latency_ms: float
    cached: bool = False
    stream: StreamTiming | None = None
    stream_failure: StreamFailure | None = None
    partial_text: str = ""


def build_record(
    record_id: str, request: Request, endpoint: Endpoint, attempt: Attempt, response: Any = None
) -> dict[str, Any]:
    """The record of one answered (or failed) request. ``response`` is given when the answer
    did not come over HTTP (the offline provider); otherwise it is read from the result."""
    record = _base_record(record_id, request, endpoint, attempt)
    if request.images:
        # The request holds references to its image files, not their base64 text; the key of
        # the body as sent lets a cassette made from this record still be replayed.
        record["request_key"] = request_key(endpoint.completions_url, request.body)
    failure = attempt.stream_failure
    if failure is not None:
        record["error"] = {"kind": failure.kind, "message": failure.message}
        if failure.limit:
            record["error"]["limit"] = failure.limit
        if attempt.partial_text:
            record["response_text"] = attempt.partial_text[:10_000]
    else:
        _fill_outcome(record, request, endpoint, attempt.result, response)
    record["expectations"] = score_record(request.spec, record, request.vars, request.case)
    return record


def not_sent_record(
    record_id: str, request: Request, endpoint: Endpoint, reason: str
) -> dict[str, Any]:
    """The record of a case whose templates failed to render: nothing was sent."""
    attempt = Attempt(HttpResult(None, {}, None, 0), utc_now(), 0.0)
    record = _base_record(record_id, request, endpoint, attempt)
    record["request"] = None
    record["error"] = {"kind": "render", "message": reason}
    record["expectations"] = score_record(request.spec, record, request.vars, request.case)
    return record


def _base_record(
    record_id: str, request: Request, endpoint: Endpoint, attempt: Attempt
) -> dict[str, Any]:
    spec = request.spec
    return {
        "id": record_id,
        "spec": {"path": spec.display, "name": spec.name, "sha256": spec.sha256},
        "case": _case_json(request),
        "matrix": dict(request.combination.fields) or None,
        "vars": request.vars,
        "provider": endpoint.describe(),
        "offline": endpoint.offline,
        "cached": attempt.cached,
        "request": request.recorded_body,
        "status": "failed",
        "http_status": attempt.result.status,
        "response": None,
        "output": None,
        "usage": None,
        "error": None,
        "attempts": attempt.result.attempts,
        "latency_ms": attempt.latency_ms,
        "stream": attempt.stream.to_json() if attempt.stream is not None else None,
        "started_at": attempt.started_at,
        "finished_at": utc_now(),
    }


def _case_json(request: Request) -> dict[str, Any] | None:
    case = request.case
    if not case.id:
        return None
    return {
        "id": case.id,
        "row": case.row,
        "source": request.spec.cases.display if request.spec.cases else None,
    }


def _fill_outcome(
    record: dict[str, Any], request: Request, endpoint: Endpoint, result: HttpResult, response: Any
) -> None:
    spec = request.spec
    if response is None:
        if result.status is None:
            record["error"] = {"kind": "connection", "message": result.error}
            if result.limit:
                record["error"]["limit"] = result.limit  # the option whose limit fired
            return
        try:
            response = result.json()
        except (ValueError, RecursionError):
            record["response_text"] = (result.text or "")[:10_000]
            kind = result.headers.get("content-type", "unknown")
            message = (
                _http_error(result, None, endpoint, spec)
                if (result.status != 200)
                else f"the provider's answer is not JSON ({kind})"
            )
            said = body_excerpt(result.text, kind) if result.status != 200 else None
            if said:
                message += f": {said}"  # a proxy's text/plain 500 says what went wrong
            record["error"] = {
                "kind": "malformed" if result.status == 200 else "http",
                "message": message,
            }
            return
    record["response"] = response
    if result.status != 200 or (isinstance(response, dict) and "error" in response):
        record["error"] = {
            "kind": "http" if result.status != 200 else "provider",
            "message": _http_error(result, response, endpoint, spec),
        }
        return
    try:
        output = check_response(spec, response)
    except MalformedResponse as exc:
        record["error"] = {
            "kind": "malformed",
            "message": f"the provider's answer is not a chat completion: {exc}",
        }
        return
    record["output"] = output.to_json()
    record["usage"] = response.get("usage")
    record["status"] = "ok" if output.valid else "invalid_output"


def _http_error(result: HttpResult, response: Any, endpoint: Endpoint, spec: Spec) -> str:
    """Why the provider refused this request, in a sentence that says what to check."""
    return explain_http_error(
        result.status,
        response,
        endpoint,
        spec,
        result.headers.get("location"),
        retried=result.attempts > 1,
    )
