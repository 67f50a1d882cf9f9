"""Send rendered requests and save one record per request.

A run resolves every spec's endpoint and renders every request before anything is sent, so a
missing key or a template error costs nothing. Requests then go through a bounded pool of
worker threads sharing one HTTP connection pool and one rate limiter; each worker saves its own
record as soon as the answer is in.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner import offline
from runner.check import MalformedResponse, check_response
from runner.errors import UsageError
from runner.explain_http import explain_http_error
from runner.providers import Endpoint, ProviderOverride, resolve_endpoint
from runner.ratelimit import RateLimiter
from runner.render import Request, render_request
from runner.spec import Spec
from runner.store import RunStore, environment_info, utc_now
from runner.transport import HttpClient, HttpResult, RetryPolicy, Timeouts


@dataclass(frozen=True)
class RunSettings:
    """Everything about how a run sends its requests; saved in the manifest for --resume."""

    provider: ProviderOverride = field(default_factory=ProviderOverride)
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    variables: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSettings:
        return cls(
            provider=ProviderOverride(**data.get("provider", {})),
            concurrency=data.get("concurrency", 8),
            rpm=data.get("rpm"),
            tpm=data.get("tpm"),
            retry=RetryPolicy(**data.get("retry", {})),
            timeouts=Timeouts(**data.get("timeouts", {})),
            variables=data.get("variables", {}),
        )


@dataclass
class RunSummary:
    """Counts and totals of a finished (or interrupted) run."""

    run_dir: Path
    total: int = 0
    ok: int = 0
    failed: int = 0
    invalid_output: int = 0
    resumed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.failed == 0 and self.invalid_output == 0

    def add(self, record: dict[str, Any]) -> None:
        self.total += 1
        status = record["status"]
        if status == "ok":
            self.ok += 1
        elif status == "invalid_output":
            self.invalid_output += 1
        else:
            self.failed += 1
        if status != "ok" and len(self.failures) < 20:
            reason = (record.get("error") or {}).get("message") or "; ".join(
                (record.get("output") or {}).get("errors") or ["output is not valid"]
            )
            self.failures.append(f"{record['spec']['path']}: {reason}")
        usage = record.get("usage") or {}
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)

    def describe(self) -> str:
        """The end-of-run summary a person reads."""
        lines = [
            f"{self.total} request(s) in {self.seconds:.1f}s: {self.ok} ok, "
            f"{self.failed} failed, {self.invalid_output} invalid output"
            + (f" ({self.resumed} already done before resuming)" if self.resumed else ""),
            f"tokens: {self.prompt_tokens} prompt, {self.completion_tokens} completion",
            f"saved in {self.run_dir}",
        ]
        lines.extend(f"  {failure}" for failure in self.failures)
        if self.failed:
            lines.append(f"send the failed ones again with: runner run --resume {self.run_dir}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        data["succeeded"] = self.succeeded
        return data


@dataclass(frozen=True)
class Job:
    """One request to send, with where it goes and the id of its record."""

    record_id: str
    request: Request
    endpoint: Endpoint


# Called after each saved record with (record, records done so far, records in this run).
Progress = Callable[[dict[str, Any], int, int], None]


def start_run(
    specs: list[Spec], settings: RunSettings, out_dir: Path, progress: Progress | None = None
) -> RunSummary:
    """Run ``specs`` into a new run directory under ``out_dir``."""
    jobs = list(_plan(specs, settings))
    store = RunStore.create(out_dir)
    store.write_manifest(_manifest(store, specs, settings, "running"))
    return _execute(store, jobs, specs, settings, progress)


def resume_run(
    run_dir: Path, load: Callable[[Path], Spec], progress: Progress | None = None
) -> RunSummary:
    """Finish an interrupted run: send only the requests that have no completed record."""
    store = RunStore.open(run_dir)
    manifest = store.read_manifest()
    settings = RunSettings.from_json(manifest["settings"])
    specs = [_reload(entry, load) for entry in manifest["specs"]]
    done = store.completed_ids()
    jobs = [job for job in _plan(specs, settings) if job.record_id not in done]
    return _execute(store, jobs, specs, settings, progress, resumed=len(done))


def _reload(entry: dict[str, Any], load: Callable[[Path], Spec]) -> Spec:
    spec = load(Path(entry["file"]))
    if spec.sha256 != entry["sha256"]:
        raise UsageError(
            f"{entry['path']} has changed since the run started; start a new run "
            "(a resumed run must send the same requests)"
        )
    return spec


def _plan(specs: list[Spec], settings: RunSettings) -> Iterator[Job]:
    endpoints: dict[Any, Endpoint] = {}
    for spec in specs:
        endpoint = endpoints.get(spec.provider)
        if endpoint is None:
            endpoint = resolve_endpoint(spec.provider, settings.provider)
            endpoints[spec.provider] = endpoint
        yield Job(spec.name, render_request(spec, settings.variables), endpoint)


def _manifest(
    store: RunStore,
    specs: list[Spec],
    settings: RunSettings,
    status: str,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    manifest = previous or {
        "run_id": store.run_id,
        "started_at": utc_now(),
        **environment_info(),
        "settings": settings.to_json(),
        "specs": [
            {"path": s.display, "file": str(s.path.resolve()), "name": s.name, "sha256": s.sha256}
            for s in specs
        ],
    }
    return {**manifest, "status": status}


def _execute(
    store: RunStore,
    jobs: list[Job],
    specs: list[Spec],
    settings: RunSettings,
    progress: Progress | None,
    resumed: int = 0,
) -> RunSummary:
    started = time.monotonic()
    sender = _Sender(settings)
    summary = RunSummary(store.root, resumed=resumed)
    lock = threading.Lock()

    def finish(record: dict[str, Any]) -> None:
        store.save_record(record)
        with lock:
            summary.add(record)
            if progress:
                progress(record, summary.total, len(jobs))

    try:
        _run_pool(jobs, sender, finish, settings.concurrency)
    finally:
        sender.close()
        summary.seconds = time.monotonic() - started
        _finish_manifest(store, summary)
    return summary


def _finish_manifest(store: RunStore, summary: RunSummary) -> None:
    store.rewrite_results()
    counts = {"total": 0, "ok": 0, "failed": 0, "invalid_output": 0}
    for record in store.records():
        counts["total"] += 1
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    manifest = store.read_manifest()
    manifest.update(
        status="complete" if counts["failed"] == 0 else "incomplete",
        finished_at=utc_now(),
        counts=counts,
    )
    store.write_manifest(manifest)


def _run_pool(
    jobs: Iterable[Job], sender: _Sender, finish: Callable[[dict[str, Any]], None], concurrency: int
) -> None:
    slots = threading.BoundedSemaphore(concurrency * 2)
    errors: list[BaseException] = []

    def done(future: Future[None]) -> None:
        slots.release()
        error = future.exception()
        if error is not None:
            errors.append(error)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="runner") as pool:
        for job in jobs:
            slots.acquire()
            if errors:
                break
            pool.submit(_send_and_finish, sender, job, finish).add_done_callback(done)
    if errors:
        raise errors[0]


def _send_and_finish(sender: _Sender, job: Job, finish: Callable[[dict[str, Any]], None]) -> None:
    finish(sender.send(job))


class _Sender:
    """Sends one job and turns what happened into a record."""

    def __init__(self, settings: RunSettings):
        self.limiter = RateLimiter(settings.rpm, settings.tpm)
        self.client = HttpClient(
            settings.retry, settings.timeouts, pool_size=max(settings.concurrency, 1)
        )

    def send(self, job: Job) -> dict[str, Any]:
        body = job.request.body
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        self.limiter.acquire(_token_estimate(body, len(payload)))
        started_at, clock = utc_now(), time.perf_counter()
        if job.endpoint.offline:
            result = HttpResult(200, {}, None, 1)
            response: Any = offline.complete(body)
        else:
            result = self.client.post_chat(job.endpoint, payload)
            self.limiter.observe(result.headers)
            response = None
        latency_ms = round((time.perf_counter() - clock) * 1000.0, 3)
        record = _base_record(job, started_at, latency_ms, result)
        _fill_outcome(record, job, result, response)
        return record

    def close(self) -> None:
        self.client.close()


def _token_estimate(body: dict[str, Any], payload_bytes: int) -> int:
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return payload_bytes // 4 + int(limit)


def _base_record(
    job: Job, started_at: str, latency_ms: float, result: HttpResult
) -> dict[str, Any]:
    spec = job.request.spec
    return {
        "id": job.record_id,
        "spec": {"path": spec.display, "name": spec.name, "sha256": spec.sha256},
        "vars": job.request.vars,
        "provider": job.endpoint.describe(),
        "offline": job.endpoint.offline,
        "request": job.request.body,
        "status": "failed",
        "http_status": result.status,
        "response": None,
        "output": None,
        "usage": None,
        "error": None,
        "attempts": result.attempts,
        "latency_ms": latency_ms,
        "started_at": started_at,
        "finished_at": utc_now(),
    }


def _fill_outcome(record: dict[str, Any], job: Job, result: HttpResult, response: Any) -> None:
    spec = job.request.spec
    if response is None:
        if result.status is None:
            record["error"] = {"kind": "connection", "message": result.error}
            return
        try:
            response = result.json()
        except ValueError:
            record["response_text"] = (result.text or "")[:10_000]
            kind = result.headers.get("content-type", "unknown")
            message = (
                explain_http_error(result.status, None, job.endpoint, spec)
                if (result.status != 200)
                else f"the provider's answer is not JSON ({kind})"
            )
            record["error"] = {
                "kind": "malformed" if result.status == 200 else "http",
                "message": message,
            }
            return
    record["response"] = response
    if result.status != 200 or (isinstance(response, dict) and "error" in response):
        record["error"] = {
            "kind": "http" if result.status != 200 else "provider",
            "message": explain_http_error(result.status, response, job.endpoint, spec),
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
