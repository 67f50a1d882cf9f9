"""Send rendered requests and save one record per request.

A run resolves every spec's endpoint and renders every request before anything is sent, so a
missing key or a template error costs nothing. Requests then go through a bounded pool of
worker threads sharing one HTTP connection pool and one rate limiter per model; each answer is
saved as soon as it is in. When the provider asks for a wait longer than ``--max-wait`` (a
daily budget used up), or the run is interrupted, requests in flight are finished and saved,
the rest are left unsent, and the manifest says why, so ``--resume`` can finish the run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from runner.grade import expect
from runner.grade.judge import JudgeTally, tally
from runner.runs.cache import CachedResponse, CacheMode, ResponseCache, cache_path_for, request_key
from runner.spec.cases import Selection, count_requests, expand, record_id, unknown_case_ids
from runner.runs.cassette import Cassette
from runner.errors import RenderError, RunInterrupted, RunStopped, Terminated, UsageError
from runner.runs.failures import FailureGroups
from runner.providers.endpoints import Endpoint, ProviderOverride, resolve_endpoint
from runner.send.ratelimit import DEFAULT_MAX_WAIT, Cancelled, Limits, LongWait, NeverFits, Wait
from runner.runs.judging import (
    JudgeCall,
    apply_verdicts,
    judge_request_count,
    judge_specs,
    plan_judges,
)
from runner.runs.record import Attempt, build_record, not_sent_record
from runner.spec.render import Request, render_request
from runner.send.retry import send_whole_with_retries, send_with_retries
from runner.spec.objects import Spec
from runner.runs.store import RecordWriter, RunStore, environment_info, git_info, utc_now
from runner.send.stream_send import StreamedAnswer, stream_offline, stream_once, streaming_body
from runner.send.transport import HttpClient, HttpResult, RetryPolicy, Timeouts, retryable


@dataclass(frozen=True)
class RunSettings:
    """Everything about how a run sends its requests; saved in the manifest for --resume."""

    provider: ProviderOverride = field(default_factory=ProviderOverride)
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_wait: float = DEFAULT_MAX_WAIT  # longest provider-imposed wait before the run stops
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
            retry=_known_fields(RetryPolicy, data.get("retry", {})),
            max_wait=data.get("max_wait", DEFAULT_MAX_WAIT),
            timeouts=Timeouts(**data.get("timeouts", {})),
            variables=data.get("variables", {}),
            cache=data.get("cache", "use"),
            replay=data.get("replay"),
            selection=_selection(data.get("selection")),
            stream=data.get("stream"),
        )


def _known_fields(cls: Any, data: dict[str, Any]) -> Any:
    """``cls(**data)`` without the fields older runner versions saved and this one dropped."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


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
    failures: FailureGroups = field(default_factory=FailureGroups)
    # Records with expectations, passed and failed, over the whole run (resumed ones too).
    expectations: dict[str, int] = field(default_factory=expect.empty_counts)
    judges: JudgeTally = field(default_factory=JudgeTally)  # verdicts, and what judges cost

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
        self.judges.add(record)
        status = record["status"]
        if status == "ok":
            self.ok += 1
        elif status == "invalid_output":
            self.invalid_output += 1
        else:
            self.failed += 1
        self.failures.add(record)
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
            *self.judges.describe(),
            f"saved in {self.run_dir}",
        ]
        lines.extend(self.failures.describe())
        if self.failed:
            lines.append(f"send the failed ones again with: runner run --resume {self.run_dir}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        data["failures"] = self.failures.to_json()
        data["judges"] = self.judges.to_json()
        data["succeeded"] = self.succeeded
        return data


@dataclass(frozen=True)
class Job:
    """One request to send, with where it goes and the id of its record."""

    record_id: str
    request: Request
    endpoint: Endpoint
    render_error: str | None = None  # the template failed for this case: nothing to send
    # Where the spec's judges send their requests, by judge path (see runner/runs/judging.py).
    judge_endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    quiet: bool = False  # a judge's request: its streamed text is not shown


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
    judges: int = 0  # judge requests that follow the answer (see runner/runs/judging.py)


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
        judges = sum(r.judges for r in self.requests)
        if judges:
            lines.append(
                f"then up to {judges} judge request(s), one per answer and judge (whether each "
                "is sent or answered from the cache is known once its answer is)"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": [asdict(r) for r in self.requests],
            "counts": self.counts(),
            "total": len(self.requests),
            "judges": sum(r.judges for r in self.requests),
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
            PlannedRequest(
                job.record_id,
                job.request.spec.display,
                _source(answers, job, settings),
                judge_request_count(job.request.spec, job.request.case),
            )
            for job in jobs
        )
    finally:
        if answers is not None:
            answers.close()
    return RunPlan(requests, path)


def _source(answers: AnswerSource | None, job: Job, settings: RunSettings) -> str:
    if job.render_error is not None:
        return "error"
    if job.endpoint.offline and not settings.replay:
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
    _check_case_ids(specs, settings.selection)
    endpoints = _endpoints(specs, settings)
    answers = _open_answers(specs, endpoints, settings)
    store = RunStore.create(out_dir)
    store.write_manifest(_manifest(store, specs, settings, "running"))
    streams = _model_streams(specs, settings, endpoints)
    total = _request_count(specs, settings)
    return _execute(store, streams, total, specs, settings, progress, answers=answers, text=text)


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
    streams = _model_streams(specs, settings, endpoints, done)
    total = max(_request_count(specs, settings) - len(done), 0)
    return _execute(
        store, streams, total, specs, settings, progress, resumed=len(done), answers=answers
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
    if spec.judges:
        entry["judges"] = [{"path": j.display, "sha256": j.sha256} for j in spec.judges.values()]
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
    for spec in (*specs, *judge_specs(specs)):
        if spec.provider not in endpoints:
            endpoints[spec.provider] = resolve_endpoint(spec.provider, settings.provider)
    return endpoints


def _model_streams(
    specs: list[Spec],
    settings: RunSettings,
    endpoints: dict[Any, Endpoint],
    done: Container[str] = frozenset(),
) -> list[Iterator[Job]]:
    """The run's requests as one lazy stream per model and endpoint (each has its own rate
    limits), so that workers can serve one model while another waits for its budget."""
    keys: dict[tuple[str, str], None] = {}
    for spec in specs:
        url = endpoints[spec.provider].completions_url
        for model in spec.matrix.get("model") or (spec.model,):
            keys[(url, str(model))] = None
    return [_plan(specs, settings, endpoints, key, done) for key in keys]


def _plan(
    specs: list[Spec],
    settings: RunSettings,
    endpoints: dict[Any, Endpoint],
    only: tuple[str, str] | None = None,
    skip: Container[str] = frozenset(),
) -> Iterator[Job]:
    """Every request of the run (or of the ``only`` endpoint and model, less the ids in
    ``skip``), rendered lazily, in spec, case and combination order."""
    for spec in specs:
        endpoint = endpoints[spec.provider]
        judges = {path: endpoints[judge.provider] for path, judge in spec.judges.items()}
        for case, combination in expand(spec.cases, spec.matrix, settings.selection):
            if only is not None:
                model = str(combination.fields.get("model", spec.model))
                if (endpoint.completions_url, model) != only:
                    continue
            if record_id(spec.name, case, combination) in skip:
                continue
            try:
                request = render_request(spec, settings.variables, case, combination)
                body = streaming_body(request.body, endpoint.name, settings.stream)
                if body is not request.body:
                    request = replace(request, body=body)
            except RenderError as exc:
                request = Request(spec, {**spec.vars, **case.vars}, {}, case, combination)
                yield Job(request.record_id, request, endpoint, str(exc.problem), judges)
                continue
            yield Job(request.record_id, request, endpoint, judge_endpoints=judges)


def _check_case_ids(specs: list[Spec], selection: Selection) -> None:
    """Refuse, before anything starts, a --case id that no spec has."""
    unknown = unknown_case_ids((spec.cases for spec in specs), selection.case_ids)
    if unknown:
        names = ", ".join(repr(case) for case in unknown)
        raise UsageError(
            f"no spec given has a case with id {names}: check the id (runner render SPEC "
            "shows every record id, SPEC-NAME/CASE-ID)"
        )


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
    streams: list[Iterator[Job]],
    total: int,
    specs: list[Spec],
    settings: RunSettings,
    progress: Progress | None,
    resumed: int = 0,
    answers: AnswerSource | None = None,
    text: TextSink | None = None,
) -> RunSummary:
    started = time.monotonic()
    # A progress display (runner/progress.py) may also show waits, and end its line.
    on_wait = getattr(progress, "waiting", None)
    start_progress = getattr(progress, "start", None)
    if start_progress is not None:
        start_progress(total)
    sender = _Sender(settings, answers, text if total == 1 else None, on_wait)
    summary = RunSummary(store.root, resumed=resumed)
    lock = threading.Lock()

    def finish(record: dict[str, Any]) -> None:
        writer.put(record)
        with lock:
            summary.add(record)
            if progress:
                progress(record, summary.total, max(total, summary.total))

    writer = RecordWriter(store, depth=settings.concurrency * 2)
    interrupted: KeyboardInterrupt | None = None
    stopped: dict[str, Any] | None = None
    try:
        _run_pool(streams, sender, finish, settings.concurrency)
    except KeyboardInterrupt as exc:
        interrupted = exc  # requests in flight were finished and saved; the rest can resume
        signal = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        stopped = {"reason": "interrupted", "signal": signal, "message": f"{signal} received"}
    finally:
        close_progress = getattr(progress, "close", None)
        if close_progress is not None:
            close_progress()
        sender.close()
        writer.close()
        store.close()
        summary.seconds = time.monotonic() - started
        counted = None if resumed else summary.expectations  # a resume saw only some
        if sender.long_wait is not None and stopped is None:
            stopped = _stopped_by(sender.long_wait)
        judged = None if resumed else summary.judges
        counts = _finish_manifest(
            store,
            _record_ids(specs, settings.selection),
            counted,
            stopped,
            judged,
            count_judges=any(spec.judges for spec in specs),
        )
        summary.expectations = counts["expectations"]
    if interrupted is not None:
        raise RunInterrupted(str(store.root), summary.total, isinstance(interrupted, Terminated))
    if sender.long_wait is not None:
        raise RunStopped(str(store.root), str(sender.long_wait), summary.total, counts["not_sent"])
    return summary


def _stopped_by(wait: LongWait) -> dict[str, Any]:
    """What the manifest says of a run stopped by a provider's limit."""
    resets_at = datetime.fromtimestamp(wait.resets_at, timezone.utc)
    return {
        "reason": "rate_limit",
        "limit": wait.wait.limit,
        "model": wait.wait.model,
        "message": str(wait),
        "resets_in_s": round(wait.wait.seconds, 3),
        "resets_at": resets_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def _record_ids(specs: list[Spec], selection: Selection) -> Iterator[str]:
    """The run's record ids in plan order (spec, case, combination), without rendering."""
    for spec in specs:
        for case, combination in expand(spec.cases, spec.matrix, selection):
            yield record_id(spec.name, case, combination)


def _finish_manifest(
    store: RunStore,
    record_ids: Iterable[str],
    counted: dict[str, int] | None = None,
    stopped: dict[str, Any] | None = None,
    judged: JudgeTally | None = None,
    count_judges: bool = False,
) -> dict[str, Any]:
    """Put results.jsonl in plan order and the counts in the manifest. ``counted``: the run's
    own tally of expectations, when it saw every record; otherwise one more pass counts them.
    ``count_judges``: the specs have judges, whose verdicts ``judged`` tallies (or one more
    pass does) as ``counts.judges``."""
    counts: dict[str, Any] = dict(store.rewrite_results(record_ids))
    counts["expectations"] = counted if counted is not None else expect.count(store.records())
    if count_judges:
        counts["judges"] = (judged if judged is not None else tally(store.records())).to_json()
    manifest = store.read_manifest()
    manifest.update(
        status="complete" if counts["failed"] == counts["not_sent"] == 0 else "incomplete",
        finished_at=utc_now(),
        counts=counts,
    )
    manifest.pop("stopped", None)
    if stopped is not None and counts["not_sent"]:
        manifest["stopped"] = stopped
    store.write_manifest(manifest)
    return counts


def _run_pool(
    streams: list[Iterator[Job]],
    sender: _Sender,
    finish: Callable[[dict[str, Any]], None],
    concurrency: int,
) -> None:
    """Send every stream's jobs, up to ``concurrency`` of each stream at once and
    ``concurrency`` requests in flight in all (the sender holds that limit): a model waiting
    for its budget holds its own workers, never the other models'."""
    errors: list[BaseException] = []
    stop = sender.limits.cancelled
    changed = threading.Condition()
    active = [0] * len(streams)
    open_streams = list(range(len(streams)))

    def done(future: Future[None], stream: int) -> None:
        with changed:
            active[stream] -= 1
            changed.notify_all()
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            errors.append(error)

    workers = min(concurrency * max(len(streams), 1), 512)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runner") as pool:
        try:
            with changed:
                while open_streams and not errors and not stop.is_set():
                    for stream in list(open_streams):
                        while active[stream] < concurrency:
                            job = next(streams[stream], None)
                            if job is None:
                                open_streams.remove(stream)
                                break
                            active[stream] += 1
                            future = pool.submit(_send_and_finish, sender, job, finish)
                            future.add_done_callback(partial(done, stream=stream))
                    if open_streams:
                        changed.wait(0.5)
                # Every job is handed out: wait for them here, where Ctrl-C still stops the
                # ones waiting for their turn (the pool's own exit would wait them all out).
                while any(active):
                    changed.wait(0.5)
        except KeyboardInterrupt:
            # Requests waiting for their turn give up, what has not started is dropped, and
            # leaving the block waits for the answers in flight.
            sender.limits.cancel()
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
        on_wait: Callable[[Wait | None], None] | None = None,
    ):
        self.settings = settings
        self.limits = Limits(settings.rpm, settings.tpm, settings.max_wait, on_wait)
        # Requests on the wire at once; workers waiting for their turn do not count.
        self.in_flight = threading.BoundedSemaphore(max(settings.concurrency, 1))
        self.answers = answers
        self.text = text
        self.long_wait: LongWait | None = None  # why the run stopped early, if it did
        # A replay never builds an HTTP client, so it cannot reach the network.
        self.client = (
            None
            if settings.replay
            else HttpClient(settings.timeouts, pool_size=max(settings.concurrency, 1))
        )

    def send(
        self, job: Job, finish: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any] | None:
        """Answer one job and hand its record to ``finish``; then cache a good answer (a run
        killed before the record is written finds the answer in the cache when resumed).
        None when the run stopped before the job was sent: it has no record."""
        body = job.request.body
        if job.render_error is not None:
            return self._not_sent(job, job.render_error, finish)
        key, stored = _stored_answer(self.answers, job)
        started_at, clock = utc_now(), time.perf_counter()
        response: Any = None
        streamed: StreamedAnswer | None = None
        never_sent = False  # too large for the token limit: failed without an attempt
        if stored is not None:
            result = HttpResult(stored.status, {}, stored.text, 0)
        elif job.endpoint.offline and body.get("stream") is True:
            streamed = stream_offline(body, None if job.quiet else self.text)
            result, response = streamed.result, streamed.completion
        elif job.endpoint.offline:
            result = HttpResult(200, {}, None, 1)
            from runner.send import offline  # only runs that use it pay for importing it

            response = offline.complete(body)
        elif self.client is None:
            result = HttpResult(None, {}, None, 0, "the replay cassette has no answer for it")
        else:
            sent = self._send(job)
            if sent is None:
                return None
            result, streamed, started_at, clock = sent
            never_sent = result.attempts == 0
            if streamed is not None:
                response = streamed.completion
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
        if never_sent:
            record["error"]["kind"] = "too_large"
        if job.request.spec.judges:
            # The answer is cached before its judges are asked: a run stopped meanwhile
            # finds it there when resumed, and asks only the judges.
            self._keep(key, stored, job, result, record)
            key = None
            record = self.judged(job.request, job.judge_endpoints, record)
        if finish is not None:
            finish(record)
        self._keep(key, stored, job, result, record)
        return record

    def _keep(
        self,
        key: str | None,
        stored: CachedResponse | None,
        job: Job,
        result: HttpResult,
        record: dict[str, Any],
    ) -> None:
        """Put a new good answer in the cache."""
        if key and self.answers is not None and stored is None and record["output"] is not None:
            self.answers.put(key, job.endpoint.completions_url, 200, result.text or "")

    def judged(
        self, request: Request, endpoints: Mapping[str, Endpoint], record: dict[str, Any]
    ) -> dict[str, Any]:
        """``record`` (the answer to ``request``) with its judges' verdicts: each judge request
        is answered like any other (cache, limits, retries), at the ``endpoints`` of the
        judges (by the path the checks name them)."""
        calls = plan_judges(request.spec, record, request.vars, request.case)
        answered: list[tuple[JudgeCall, dict[str, Any] | None]] = []
        for call in calls:
            endpoint = endpoints[call.path]
            body = streaming_body(call.request.body, endpoint.name, self.settings.stream)
            judge_request = replace(call.request, body=body)
            judge_job = Job(call.record_id, judge_request, endpoint, call.render_error, quiet=True)
            answered.append((call, self.send(judge_job)))
        return apply_verdicts(request.spec, record, request.case, answered)

    def _send(self, job: Job) -> tuple[HttpResult, StreamedAnswer | None, str, float] | None:
        """Send one job through its model's limiter, with retries: the result (and the stream,
        if it was streamed) and when the first attempt left. None when the run stops before
        the job is sent."""
        assert self.client is not None
        client, endpoint, settings = self.client, job.endpoint, self.settings
        body = job.request.body
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        model = str(body.get("model", ""))
        limiter = self.limits.for_model(
            (endpoint.completions_url, model),
            model,
            "requests-per-minute" if endpoint.name == "openai" else "requests-per-day",
        )
        first: list[tuple[str, float]] = []

        def started() -> None:
            if not first:
                first.append((utc_now(), time.perf_counter()))

        def send_whole() -> HttpResult:
            with self.in_flight:
                started()
                return client.post_chat(endpoint, payload)

        def send_stream() -> StreamedAnswer:
            with self.in_flight:
                started()
                text = None if job.quiet else self.text
                return stream_once(client, endpoint, payload, settings.timeouts, text)

        tokens = token_estimate(body)
        stop = self.limits.cancelled
        try:
            if body.get("stream") is True:
                streamed, attempts = send_with_retries(
                    send_stream, limiter, tokens, settings.retry, stop, _result_of, _may_retry
                )
                result = replace(streamed.result, attempts=attempts)
                return result, streamed, *first[0]
            result = send_whole_with_retries(send_whole, limiter, tokens, settings.retry, stop)
        except NeverFits as exc:
            result = HttpResult(None, {}, None, 0, str(exc))
            return result, None, utc_now(), time.perf_counter()
        except LongWait as exc:
            if self.long_wait is None:
                self.long_wait = exc
            self.limits.cancel()
            return None
        except Cancelled:
            return None
        return result, None, *first[0]

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
    """The job's cache key and stored answer: offline answers are never cached, but a
    cassette may hold them (exported from an offline run) and replays them."""
    if answers is None or (job.endpoint.offline and not isinstance(answers, Cassette)):
        return None, None
    key = request_key(job.endpoint.completions_url, job.request.body)
    return key, answers.get(key)


def _result_of(streamed: StreamedAnswer) -> HttpResult:
    return streamed.result


def _may_retry(streamed: StreamedAnswer) -> bool:
    """A stream that failed before its first token, or an answer that was not a stream and
    may be retried like any other (5xx, dropped connection)."""
    return streamed.retryable or (streamed.failure is None and retryable(streamed.result))


def token_estimate(body: dict[str, Any]) -> int:
    """About how many tokens a request counts against a tokens-per-minute limit: its prompt
    (about 4 characters a token, plus a few per message) and its completion limit."""
    chars = 0
    messages = body.get("messages") or []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else message
        chars += len(content if isinstance(content, str) else json.dumps(content))
    for extra in ("tools", "response_format"):
        if body.get(extra):
            chars += len(json.dumps(body[extra]))
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return (chars + 3) // 4 + 4 * len(messages) + int(limit)
