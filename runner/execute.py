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
from collections.abc import Callable, Container, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from runner import expect
from runner.cache import CachedResponse, CacheMode, ResponseCache, cache_path_for, request_key
from runner.cases import Selection, count_requests, expand, record_id
from runner.cassette import Cassette
from runner.errors import RenderError, RunInterrupted, UsageError
from runner.providers import Endpoint, ProviderOverride, resolve_endpoint
from runner.ratelimit import RateLimiter
from runner.record import Attempt, build_record, not_sent_record
from runner.render import Request, render_request
from runner.spec import Spec
from runner.store import RecordWriter, RunStore, environment_info, git_info, utc_now
from runner.stream_send import StreamedAnswer, send_streamed, stream_offline, streaming_body
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
    cache: CacheMode = "use"
    replay: str | None = None  # a cassette file: answer everything from it, send nothing
    selection: Selection = field(default_factory=Selection)
    stream: bool | None = None  # --stream / --no-stream; None: as each spec says

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
            cache=data.get("cache", "use"),
            replay=data.get("replay"),
            selection=_selection(data.get("selection")),
            stream=data.get("stream"),
        )


def _selection(data: dict[str, Any] | None) -> Selection:
    if not data:
        return Selection()
    ids = tuple(data.get("case_ids") or ())
    return Selection(ids, data.get("limit"), data.get("sample"), data.get("seed", 0))


@dataclass
class RunSummary:
    """Counts and totals of a finished (or interrupted) run."""

    run_dir: Path
    total: int = 0
    ok: int = 0
    failed: int = 0
    invalid_output: int = 0
    resumed: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    # Records with expectations, passed and failed, over the whole run (resumed ones too).
    expectations: dict[str, int] = field(default_factory=expect.empty_counts)

    @property
    def succeeded(self) -> bool:
        return self.failed == 0 and self.invalid_output == 0

    @property
    def expectations_failed(self) -> bool:
        return self.expectations["failed"] > 0

    def add(self, record: dict[str, Any]) -> None:
        self.total += 1
        self.cached += bool(record.get("cached"))
        expect.add_count(self.expectations, record)
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
            + (f", {self.cached} from cache" if self.cached else "")
            + (f" ({self.resumed} already done before resuming)" if self.resumed else ""),
            f"tokens: {self.prompt_tokens} prompt, {self.completion_tokens} completion",
            *expect.describe_counts(self.expectations),
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
    render_error: str | None = None  # the template failed for this case: nothing to send


# Called after each saved record with (record, records done so far, records in this run).
Progress = Callable[[dict[str, Any], int, int], None]

# Called with each new piece of answer text of a run's only request, when it is streamed.
TextSink = Callable[[str], None]

# Where stored answers come from: the response cache, or a cassette when replaying.
AnswerSource = ResponseCache | Cassette


@dataclass(frozen=True)
class PlannedRequest:
    """One request of a dry run and where its answer would come from."""

    record_id: str
    spec_path: str
    source: str  # send, cache, replay, offline, or error (the templates fail for it)


@dataclass(frozen=True)
class RunPlan:
    """What ``runner run`` would do, request by request; nothing sent, no run directory."""

    requests: tuple[PlannedRequest, ...]
    cache_path: Path | None = None

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("send", "cache", "replay", "offline", "error"), 0)
        for request in self.requests:
            counts[request.source] += 1
        return counts

    def describe(self) -> str:
        """One line per request, then the counts."""
        labels = {
            "send": "send",
            "cache": "cached",
            "replay": "replay",
            "offline": "offline",
            "error": "ERROR",
        }
        lines = [f"{labels[r.source]:<9}{r.record_id}  ({r.spec_path})" for r in self.requests]
        counts = self.counts()
        parts = [f"{counts['send']} to send", f"{counts['cache']} from cache"]
        parts += [f"{counts[k]} {k}" for k in ("replay", "offline") if counts[k]]
        if counts["error"]:
            parts.append(f"{counts['error']} that cannot be rendered")
        lines.append(f"{len(self.requests)} request(s): {', '.join(parts)} (dry run: nothing sent)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": [asdict(r) for r in self.requests],
            "counts": self.counts(),
            "total": len(self.requests),
            "cache_path": str(self.cache_path) if self.cache_path else None,
        }


def plan_run(specs: list[Spec], settings: RunSettings) -> RunPlan:
    """Render every request and say whether it would be sent or answered from the cache."""
    endpoints = _endpoints(specs, settings)
    jobs = _plan(specs, settings, endpoints)  # rendered one at a time: images are not kept
    path = cache_path_for(specs[0].path) if specs and settings.cache == "use" else None
    answers: AnswerSource | None = None
    if settings.replay:
        answers = _open_answers(specs, endpoints, settings)
    elif path is not None and path.is_file():
        answers = ResponseCache(path, "use")
    try:
        requests = tuple(
            PlannedRequest(job.record_id, job.request.spec.display, _source(answers, job, settings))
            for job in jobs
        )
    finally:
        if answers is not None:
            answers.close()
    return RunPlan(requests, path)


def _source(answers: AnswerSource | None, job: Job, settings: RunSettings) -> str:
    if job.render_error is not None:
        return "error"
    if job.endpoint.offline:
        return "offline"
    _, stored = _stored_answer(answers, job)
    if stored is None:
        return "send"
    return "replay" if settings.replay else "cache"


def start_run(
    specs: list[Spec],
    settings: RunSettings,
    out_dir: Path,
    progress: Progress | None = None,
    text: TextSink | None = None,
) -> RunSummary:
    """Run ``specs`` into a new run directory under ``out_dir``.

    Endpoints (and their keys) are resolved, and a replay cassette checked, before anything
    is sent; requests are then rendered one at a time as workers become free, so a spec with
    100,000 cases runs in bounded memory. ``text`` receives the answer as it arrives when the
    run is a single streamed request.
    """
    endpoints = _endpoints(specs, settings)
    answers = _open_answers(specs, endpoints, settings)
    store = RunStore.create(out_dir)
    store.write_manifest(_manifest(store, specs, settings, "running"))
    jobs = _plan(specs, settings, endpoints)
    total = _request_count(specs, settings)
    return _execute(store, jobs, total, specs, settings, progress, answers=answers, text=text)


def resume_run(
    run_dir: Path, load: Callable[[Path], Spec], progress: Progress | None = None
) -> RunSummary:
    """Finish an interrupted run: send only the requests that have no completed record."""
    store = RunStore.open(run_dir)
    manifest = store.read_manifest()
    settings = RunSettings.from_json(manifest["settings"])
    specs = [_reload(entry, load) for entry in manifest["specs"]]
    done = store.completed_ids()
    endpoints = _endpoints(specs, settings)
    answers = _open_answers(specs, endpoints, settings, done)
    jobs = (job for job in _plan(specs, settings, endpoints) if job.record_id not in done)
    total = max(_request_count(specs, settings) - len(done), 0)
    return _execute(
        store, jobs, total, specs, settings, progress, resumed=len(done), answers=answers
    )


def _open_answers(
    specs: list[Spec],
    endpoints: dict[Any, Endpoint],
    settings: RunSettings,
    done: Container[str] = frozenset(),
) -> AnswerSource | None:
    """The cache or cassette answering this run, checked before anything is sent."""
    if settings.replay:
        cassette = Cassette.load(Path(settings.replay))
        missing = (
            job
            for job in _plan(specs, settings, endpoints)
            if job.record_id not in done
            and job.render_error is None
            and not job.endpoint.offline
            and not cassette.has(request_key(job.endpoint.completions_url, job.request.body))
        )
        count, named = 0, list[str]()
        for job in missing:
            count += 1
            if len(named) < 20:
                named.append(f"{job.request.spec.display} (record {job.record_id})")
        if count:
            cassette.close()
            more = " ..." if count > len(named) else ""
            raise UsageError(
                f"the cassette {cassette.path} has no answer for {count} request(s): "
                f"{'; '.join(named)}{more}; record them with runner run and runner export"
            )
        return cassette
    if settings.cache == "off" or all(e.offline for e in endpoints.values()):
        return None
    return ResponseCache(cache_path_for(specs[0].path), settings.cache)


def _spec_entry(spec: Spec) -> dict[str, Any]:
    """What the manifest says of a spec: enough to reload it and see that it has not changed."""
    entry: dict[str, Any] = {
        "path": spec.display,
        "file": str(spec.path.resolve()),
        "name": spec.name,
        "sha256": spec.sha256,
    }
    if spec.bases:
        entry["bases"] = list(spec.bases)
    if spec.cases is not None and spec.cases.sha256 is not None:  # a data file, or files
        entry["data"] = {"path": spec.cases.display, "sha256": spec.cases.sha256}
    return entry


def _reload(entry: dict[str, Any], load: Callable[[Path], Spec]) -> Spec:
    spec = load(Path(entry["file"]))
    if _spec_entry(spec) != entry:
        raise UsageError(
            f"{entry['path']} (or a file it uses) has changed since the run started; start a "
            "new run (a resumed run must send the same requests)"
        )
    return spec


def _endpoints(specs: list[Spec], settings: RunSettings) -> dict[Any, Endpoint]:
    """Each spec provider's endpoint, resolved once: a missing key fails before any request."""
    endpoints: dict[Any, Endpoint] = {}
    for spec in specs:
        if spec.provider not in endpoints:
            endpoints[spec.provider] = resolve_endpoint(spec.provider, settings.provider)
    return endpoints


def _plan(
    specs: list[Spec], settings: RunSettings, endpoints: dict[Any, Endpoint]
) -> Iterator[Job]:
    """Every request of the run, rendered lazily, in spec, case and combination order."""
    for spec in specs:
        endpoint = endpoints[spec.provider]
        for case, combination in expand(spec.cases, spec.matrix, settings.selection):
            try:
                request = render_request(spec, settings.variables, case, combination)
                body = streaming_body(request.body, endpoint.name, settings.stream)
                if body is not request.body:
                    request = replace(request, body=body)
            except RenderError as exc:
                request = Request(spec, {**spec.vars, **case.vars}, {}, case, combination)
                yield Job(request.record_id, request, endpoint, str(exc.problem))
                continue
            yield Job(request.record_id, request, endpoint)


def _request_count(specs: list[Spec], settings: RunSettings) -> int:
    """How many requests the run makes (for the progress bar)."""
    return sum(count_requests(s.cases, s.matrix, settings.selection) for s in specs)


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
        "git": git_info(specs[0].path.parent) if specs else None,
        "settings": settings.to_json(),
        "specs": [_spec_entry(s) for s in specs],
    }
    return {**manifest, "status": status}


def _execute(
    store: RunStore,
    jobs: Iterable[Job],
    total: int,
    specs: list[Spec],
    settings: RunSettings,
    progress: Progress | None,
    resumed: int = 0,
    answers: AnswerSource | None = None,
    text: TextSink | None = None,
) -> RunSummary:
    started = time.monotonic()
    sender = _Sender(settings, answers, text if total == 1 else None)
    summary = RunSummary(store.root, resumed=resumed)
    lock = threading.Lock()

    def finish(record: dict[str, Any]) -> None:
        writer.put(record)
        with lock:
            summary.add(record)
            if progress:
                progress(record, summary.total, max(total, summary.total))

    writer = RecordWriter(store, depth=settings.concurrency * 2)
    interrupted = False
    try:
        _run_pool(jobs, sender, finish, settings.concurrency)
    except KeyboardInterrupt:
        interrupted = True  # requests in flight were finished and saved; the rest can resume
    finally:
        sender.close()
        writer.close()
        store.close()
        summary.seconds = time.monotonic() - started
        counted = None if resumed else summary.expectations  # a resume saw only some
        counts = _finish_manifest(store, _record_ids(specs, settings.selection), counted)
        summary.expectations = counts["expectations"]
    if interrupted:
        raise RunInterrupted(str(store.root), summary.total)
    return summary


def _record_ids(specs: list[Spec], selection: Selection) -> Iterator[str]:
    """The run's record ids in plan order (spec, case, combination), without rendering."""
    for spec in specs:
        for case, combination in expand(spec.cases, spec.matrix, selection):
            yield record_id(spec.name, case, combination)


def _finish_manifest(
    store: RunStore, record_ids: Iterable[str], counted: dict[str, int] | None = None
) -> dict[str, Any]:
    """Put results.jsonl in plan order and the counts in the manifest. ``counted``: the run's
    own tally of expectations, when it saw every record; otherwise one more pass counts them."""
    counts: dict[str, Any] = dict(store.rewrite_results(record_ids))
    counts["expectations"] = counted if counted is not None else expect.count(store.records())
    manifest = store.read_manifest()
    manifest.update(
        status="complete" if counts["failed"] == counts["not_sent"] == 0 else "incomplete",
        finished_at=utc_now(),
        counts=counts,
    )
    store.write_manifest(manifest)
    return counts


def _run_pool(
    jobs: Iterable[Job], sender: _Sender, finish: Callable[[dict[str, Any]], None], concurrency: int
) -> None:
    slots = threading.BoundedSemaphore(concurrency * 2)
    errors: list[BaseException] = []

    def done(future: Future[None]) -> None:
        slots.release()
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            errors.append(error)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="runner") as pool:
        try:
            for job in jobs:
                slots.acquire()
                if errors:
                    break
                pool.submit(_send_and_finish, sender, job, finish).add_done_callback(done)
        except KeyboardInterrupt:
            # Drop what has not started; leaving the block waits for what is in flight.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    if errors:
        raise errors[0]


def _send_and_finish(sender: _Sender, job: Job, finish: Callable[[dict[str, Any]], None]) -> None:
    sender.send(job, finish)


class _Sender:
    """Sends one job, or answers it from the cache or a cassette, and makes its record."""

    def __init__(
        self,
        settings: RunSettings,
        answers: AnswerSource | None = None,
        text: TextSink | None = None,
    ):
        self.settings = settings
        self.limiter = RateLimiter(settings.rpm, settings.tpm)
        self.answers = answers
        self.text = text
        # A replay never builds an HTTP client, so it cannot reach the network.
        self.client = (
            None
            if settings.replay
            else HttpClient(
                settings.retry, settings.timeouts, pool_size=max(settings.concurrency, 1)
            )
        )

    def send(
        self, job: Job, finish: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Answer one job and hand its record to ``finish``; then cache a good answer (a run
        killed before the record is written finds the answer in the cache when resumed)."""
        body = job.request.body
        if job.render_error is not None:
            return self._not_sent(job, job.render_error, finish)
        key, stored = _stored_answer(self.answers, job)
        started_at, clock = utc_now(), time.perf_counter()
        response: Any = None
        streamed: StreamedAnswer | None = None
        if stored is not None:
            result = HttpResult(stored.status, {}, stored.text, 0)
        elif job.endpoint.offline and body.get("stream") is True:
            streamed = stream_offline(body, self.text)
            result, response = streamed.result, streamed.completion
        elif job.endpoint.offline:
            result = HttpResult(200, {}, None, 1)
            from runner import offline  # only runs that use it pay for importing it

            response = offline.complete(body)
        elif self.client is None:
            result = HttpResult(None, {}, None, 0, "the replay cassette has no answer for it")
        else:
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            estimate = _token_estimate(body, len(payload))
            self.limiter.acquire(estimate)
            started_at, clock = utc_now(), time.perf_counter()
            if body.get("stream") is True:
                streamed = send_streamed(
                    self.client,
                    job.endpoint,
                    payload,
                    self.settings.timeouts,
                    self.settings.retry,
                    self.text,
                    lambda: self.limiter.acquire(estimate),
                )
                result, response = streamed.result, streamed.completion
            else:
                result = self.client.post_chat(job.endpoint, payload)
            self.limiter.observe(result.headers)
        latency_ms = round((time.perf_counter() - clock) * 1000.0, 3)
        attempt = Attempt(result, started_at, latency_ms, cached=stored is not None)
        if streamed is not None:
            attempt = replace(
                attempt,
                stream=streamed.timing,
                stream_failure=streamed.failure,
                partial_text=streamed.partial_text,
            )
        record = build_record(job.record_id, job.request, job.endpoint, attempt, response)
        if finish is not None:
            finish(record)
        if key and self.answers is not None and stored is None and record["output"] is not None:
            self.answers.put(key, job.endpoint.completions_url, 200, result.text or "")
        return record

    def _not_sent(
        self, job: Job, reason: str, finish: Callable[[dict[str, Any]], None] | None
    ) -> dict[str, Any]:
        record = not_sent_record(job.record_id, job.request, job.endpoint, reason)
        if finish is not None:
            finish(record)
        return record

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.answers is not None:
            self.answers.close()


def _stored_answer(
    answers: AnswerSource | None, job: Job
) -> tuple[str | None, CachedResponse | None]:
    """The job's cache key and stored answer (offline answers are never stored)."""
    if answers is None or job.endpoint.offline:
        return None, None
    key = request_key(job.endpoint.completions_url, job.request.body)
    return key, answers.get(key)


def _token_estimate(body: dict[str, Any], payload_bytes: int) -> int:
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return payload_bytes // 4 + int(limit)
