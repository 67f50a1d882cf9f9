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
import signal
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from runner.errors import (
    RenderError,
    RunInterrupted,
    RunRefused,
    RunStopped,
    UntrustedEndpoint,
    UsageError,
    plural,
)
from runner.grade import expect
from runner.grade.judge import JudgeTally, tally
from runner.providers.endpoints import (
    Endpoint,
    ProviderOverride,
    chosen_routes,
    resolve_endpoint,
)
from runner.providers.trust import remember_run
from runner.runs.breaker import Breaker
from runner.runs.cache import CachedResponse, CacheMode, ResponseCache, cache_path_for, request_key
from runner.runs.cassette import Cassette
from runner.runs.cost import CostTally, estimate_request, usd
from runner.runs.earlier import EarlierAnswers
from runner.runs.failures import FailureGroups
from runner.runs.judging import (
    JudgeCall,
    apply_verdicts,
    judge_request_count,
    judge_specs,
    plan_judges,
)
from runner.runs.lifecycle import StopRequests
from runner.runs.record import Attempt, build_record, not_sent_record
from runner.runs.store import RecordWriter, RunStore, environment_info, git_info, utc_now
from runner.send.ratelimit import (
    DEFAULT_MAX_WAIT,
    Cancelled,
    Gate,
    Limits,
    LongWait,
    NeverFits,
    Wait,
)
from runner.send.retry import send_whole_with_retries, send_with_retries
from runner.send.stream_send import StreamedAnswer, stream_offline, stream_once, streaming_body
from runner.send.transport import HttpClient, HttpResult, RetryPolicy, Timeouts, retryable
from runner.spec.cases import Selection, count_requests, expand, record_id, unknown_case_ids
from runner.spec.objects import Spec
from runner.spec.project import find_project_root
from runner.spec.render import Request, render_request


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
        data = asdict(self)
        data["provider"].pop("run_dir", None)  # where it is read from, not what was chosen
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], run_dir: Path | None = None) -> RunSettings:
        """The settings a manifest saved. Its provider settings are the run folder's, not a
        choice of whoever reads it now: ``run_dir`` marks them so (see ProviderOverride)."""
        provider = {k: v for k, v in data.get("provider", {}).items() if k != "run_dir"}
        return cls(
            provider=_known_fields(ProviderOverride, {**provider, "run_dir": str(run_dir or "")}),
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
    cost: CostTally = field(default_factory=CostTally)  # US dollars, from the usage returned
    cache_problem: str | None = None  # why some answers could not be kept in the cache

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
        self.cost.add(record)

    def describe(self) -> str:
        """The end-of-run summary a person reads."""
        lines = [
            f"{plural(self.total, 'request')} in {self.seconds:.1f}s: {self.ok} ok, "
            f"{self.failed} failed, {self.invalid_output} invalid output"
            + (f", {self.cached} from cache" if self.cached else "")
            + (f" ({self.resumed} already done before resuming)" if self.resumed else ""),
            f"tokens: {self.prompt_tokens} prompt, {self.completion_tokens} completion",
            *self.cost.describe(),
            *expect.describe_counts(self.expectations),
            *self.judges.describe(),
            f"saved in {self.run_dir}",
        ]
        if self.cache_problem:
            lines.append(f"warning: {self.cache_problem}")
        lines.extend(self.failures.describe())
        if self.failed:
            lines.append(f"send the failed ones again with: runner run --resume {self.run_dir}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        data["failures"] = self.failures.to_json()
        data["judges"] = self.judges.to_json()
        data["cost"] = self.cost.to_json()
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


# A model at an endpoint: (completions URL, model), the key of its rate limiter and its jobs.
ModelKey = tuple[str, str]

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
    estimated_usd: float | None = None  # at most, for a request to send (runs/cost.py)


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
        lines.append(
            f"{plural(len(self.requests), 'request')}: {', '.join(parts)} (dry run: nothing sent)"
        )
        priced = [r.estimated_usd for r in self.requests if r.estimated_usd is not None]
        if priced:
            unpriced = sum(r.source == "send" and r.estimated_usd is None for r in self.requests)
            lines.append(
                f"estimated cost: at most {usd(sum(priced))} for {plural(len(priced), 'request')} "
                "to send (an estimate: prompt tokens from the rendered text at about "
                "4 characters a token, completion tokens at each request's "
                "max_completion_tokens, at the catalogue's prices)"
                + (f"; {plural(unpriced, 'request')} without a price" if unpriced else "")
            )
        judges = sum(r.judges for r in self.requests)
        if judges:
            lines.append(
                f"then up to {plural(judges, 'judge request')}, one per answer and judge "
                "(whether each "
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
                source := _source(answers, job, settings),
                judge_request_count(job.request.spec, job.request.case),
                _estimate(job) if source == "send" else None,
            )
            for job in jobs
        )
    finally:
        if answers is not None:
            answers.close()
    return RunPlan(requests, path)


def _estimate(job: Job) -> float | None:
    return estimate_request(job.request.body, job.endpoint.name, job.endpoint.base_url)[0]


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
    store.lock("runner run")
    try:
        remember_run(store.root, chosen_routes(endpoints.values(), settings.provider))
        store.write_manifest(_manifest(store, specs, settings, "running"))
        streams = _model_streams(specs, settings, endpoints)
        total = _request_count(specs, settings)
    except BaseException:
        _give_up(store, answers)
        raise
    return _execute(store, streams, total, specs, settings, progress, answers=answers, text=text)


def resume_run(
    run_dir: Path,
    load: Callable[[Path], Spec],
    progress: Progress | None = None,
    chosen: ProviderOverride | None = None,
) -> RunSummary:
    """Finish an interrupted run: send only the requests that have no completed record.

    ``chosen`` holds the base URL and key variable the person resuming gave (``--base-url``,
    ``--api-key-env``): they must be the run's own, and then count as chosen by that person
    (a run folder alone cannot choose a server; see runner/providers/trust.py)."""
    store = RunStore.open(run_dir)
    store.lock("runner run --resume")  # before anything is read: another writer is refused
    answers: AnswerSource | None = None
    try:
        manifest = store.read_manifest()
        settings = RunSettings.from_json(manifest["settings"], store.root)
        if chosen is not None and (chosen.base_url or chosen.api_key_env):
            settings = replace(settings, provider=_confirmed(settings.provider, chosen))
        specs = [_reload(entry, load) for entry in manifest["specs"]]
        done = store.completed_ids()
        endpoints = _endpoints(specs, settings)
        remember_run(store.root, chosen_routes(endpoints.values(), settings.provider))
        answers = _open_answers(specs, endpoints, settings, done)
        streams = _model_streams(specs, settings, endpoints, done)
        total = max(_request_count(specs, settings) - len(done), 0)
        # Only judged records keep an answer worth taking back: other runs skip the read.
        earlier = EarlierAnswers.of(store) if any(spec.judges for spec in specs) else None
    except BaseException:
        _give_up(store, answers)
        raise
    return _execute(
        store,
        streams,
        total,
        specs,
        settings,
        progress,
        resumed=len(done),
        answers=answers,
        earlier=earlier,
    )


def _confirmed(saved: ProviderOverride, chosen: ProviderOverride) -> ProviderOverride:
    """The run's provider settings, made the resuming user's own choice by ``chosen``, which
    must name the same base URL and key variable (a resume sends what the run would have)."""
    for option, given, own in (
        ("--base-url", chosen.base_url, saved.base_url),
        ("--api-key-env", chosen.api_key_env, saved.api_key_env),
    ):
        if given is not None and given != own:
            started = f"with {option} {own}" if own else f"without {option}"
            raise UsageError(
                f"this run was started {started}, and a resume sends what the run would "
                f"have sent: give {option} as the run had it, or start a new run"
            )
    return replace(saved, run_dir=None)


def _give_up(store: RunStore, answers: AnswerSource | None) -> None:
    """A run that failed before sending: let go of its cache and its run directory."""
    if answers is not None:
        answers.close()
    store.unlock()


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
                f"the cassette {cassette.path} has no answer for {plural(count, 'request')}: "
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
    """Each spec provider's endpoint, resolved once: a missing key, or a key that may not go
    where a spec sends it, fails before any request (naming every such key and server)."""
    endpoints: dict[Any, Endpoint] = {}
    seen: set[tuple[Any, Path]] = set()
    refused: list[str] = []
    for spec in (*specs, *judge_specs(specs)):
        project = find_project_root(spec.path)
        if (spec.provider, project) in seen:
            continue
        seen.add((spec.provider, project))
        try:
            endpoint = resolve_endpoint(
                spec.provider, settings.provider, project=project, what=spec.display
            )
        except UntrustedEndpoint as exc:
            refused += [r for r in exc.reasons if r not in refused]
            continue
        endpoints.setdefault(spec.provider, endpoint)
    if refused:
        raise UntrustedEndpoint(refused)
    return endpoints


def _model_streams(
    specs: list[Spec],
    settings: RunSettings,
    endpoints: dict[Any, Endpoint],
    done: Container[str] = frozenset(),
) -> list[tuple[ModelKey, Iterator[Job]]]:
    """The run's requests as one lazy stream per model and endpoint (each has its own rate
    limits), so that workers can serve one model while another waits for its budget, and go
    on when another's limit stops it."""
    keys: dict[tuple[str, str], None] = {}
    for spec in specs:
        url = endpoints[spec.provider].completions_url
        for model in spec.matrix.get("model") or (spec.model,):
            keys[(url, str(model))] = None
    return [(key, _plan(specs, settings, endpoints, key, done)) for key in keys]


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
    streams: list[tuple[ModelKey, Iterator[Job]]],
    total: int,
    specs: list[Spec],
    settings: RunSettings,
    progress: Progress | None,
    resumed: int = 0,
    answers: AnswerSource | None = None,
    text: TextSink | None = None,
    earlier: EarlierAnswers | None = None,
) -> RunSummary:
    """Send, drain, close and finish a planned run (``store`` locked by this process)."""
    store.plan_order(_record_ids(specs, settings.selection))  # each record's place, as saved
    run = _Run(store, total, specs, settings, progress, resumed, answers, text, earlier)
    return run.go(streams)


class _Run:
    """One run's lifecycle after its plan: send, drain, close, finish.

    Stop requests (Ctrl-C, SIGTERM, a worker's error) end the send; the drain joins every
    worker (abandoning what is in flight when told to); only then are the client, the cache,
    the record writer and the store closed, each even when another failed; and the finish
    puts the results in order and writes the manifest, with signals held off until it is done.
    """

    def __init__(
        self,
        store: RunStore,
        total: int,
        specs: list[Spec],
        settings: RunSettings,
        progress: Progress | None,
        resumed: int,
        answers: AnswerSource | None,
        text: TextSink | None,
        earlier: EarlierAnswers | None = None,
    ):
        self.store, self.total, self.specs, self.settings = store, total, specs, settings
        self.progress = progress
        self.resumed = resumed
        self.stops = StopRequests()
        # A progress display (runner/runs/progress.py) may also show waits, and end its line.
        on_wait = getattr(progress, "waiting", None)
        on_retry = getattr(progress, "retrying", None)
        self.sender = _Sender(
            settings, answers, text if total == 1 else None, on_wait, earlier, on_retry
        )
        self.summary = RunSummary(store.root, resumed=resumed)
        self.writer = RecordWriter(store, depth=settings.concurrency * 2)
        self._lock = threading.Lock()

    def go(self, streams: list[tuple[ModelKey, Iterator[Job]]]) -> RunSummary:
        started = time.monotonic()
        start_progress = getattr(self.progress, "start", None)
        if start_progress is not None:
            start_progress(self.total)
        try:
            with self.stops.listening():
                failure = self._send_and_drain(streams)
                failure = self._close() or failure
                self.summary.seconds = time.monotonic() - started
                counts = self._finish(failure is None)
        finally:
            self.store.unlock()
        if failure is not None:
            raise failure
        return self._outcome(counts)

    def record(self, record: dict[str, Any]) -> None:
        """Save one record (a worker calls it) and count it."""
        self.writer.put(record)
        with self._lock:
            self.summary.add(record)
            if self.progress:
                self.progress(record, self.summary.total, max(self.total, self.summary.total))

    def _send_and_drain(self, streams: list[tuple[ModelKey, Iterator[Job]]]) -> Exception | None:
        try:
            _run_pool(streams, self.sender, self.record, self.settings.concurrency, self.stops)
        except Exception as exc:  # a worker's error: every worker has been joined
            return exc
        return None

    def _close(self) -> Exception | None:
        """Close what the workers used, now that none runs: each step even if one fails."""
        first: Exception | None = None
        close_progress = getattr(self.progress, "close", None)
        for step in (close_progress, self.sender.close, self.writer.close, self.store.close):
            if step is None:
                continue
            try:
                step()
            except Exception as exc:
                first = first or exc
        self.summary.cache_problem = self.sender.cache_problem()
        return first

    def _finish(self, saved_all: bool) -> dict[str, Any]:
        whole = saved_all and not self.resumed  # otherwise one more pass counts the records
        counts = _finish_manifest(
            self.store,
            _record_ids(self.specs, self.settings.selection),
            self.summary.expectations if whole else None,
            self._stopped(),
            self.summary.judges if whole else None,
            count_judges=any(spec.judges for spec in self.specs),
            cost=self.summary.cost if whole else None,
        )
        self.summary.expectations = counts["expectations"]
        return counts

    def _stopped(self) -> dict[str, Any] | None:
        """What the manifest says of a run that ended early, or None."""
        waits = self.sender.limits.stopped()
        by_model = [r.to_json() for r in self.sender.breaker.refusals()]
        by_model += [_stopped_by(wait) for wait in waits]
        if self.stops.stop:
            name = self.stops.name
            stopped: dict[str, Any] = {
                "reason": "interrupted",
                "signal": name,
                "message": f"{name} received",
            }
            if by_model:
                stopped["models"] = by_model
            return stopped
        if by_model:
            return {**by_model[0], "models": by_model}
        return None

    def _outcome(self, counts: dict[str, Any]) -> RunSummary:
        root, summary = str(self.store.root), self.summary
        answered = summary.ok + summary.invalid_output
        if self.stops.stop:
            raise RunInterrupted(root, answered, self.stops.terminated, summary.failed)
        waits = self.sender.limits.stopped()
        reasons = [f"{wait} (at {_stopped_by(wait)['resets_at']})" for wait in waits]
        refusals = self.sender.breaker.refusals()
        if refusals and counts["not_sent"]:
            reasons = [r.describe() for r in refusals] + [f"also: {r}" for r in reasons]
            resumable = all(r.resumable for r in refusals)
            raise RunRefused(root, reasons, answered, counts["not_sent"], summary.failed, resumable)
        if waits and counts["not_sent"]:
            raise RunStopped(root, "; ".join(reasons), answered, counts["not_sent"], summary.failed)
        return self.summary


def _stopped_by(wait: LongWait) -> dict[str, Any]:
    """What the manifest says of a model stopped by a provider's limit."""
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
    cost: CostTally | None = None,
) -> dict[str, Any]:
    """Put results.jsonl in plan order and the counts in the manifest. ``counted``: the run's
    own tally of expectations, when it saw every record; otherwise one more pass counts them.
    ``count_judges``: the specs have judges, whose verdicts ``judged`` tallies (or one more
    pass does) as ``counts.judges``; ``cost``, the run's own tally of what its answers cost
    (``counts.cost``: US dollars by model, from the usage returned)."""
    counts: dict[str, Any] = dict(store.finish_results(record_ids))
    counts["expectations"] = counted if counted is not None else expect.count(store.records())
    if count_judges:
        counts["judges"] = (judged if judged is not None else tally(store.records())).to_json()
    if cost is None:  # a resumed run: every record is priced again, the earlier ones too
        cost = CostTally()
        for record in store.records():
            cost.add(record)
    counts["cost"] = cost.to_json()
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
    streams: list[tuple[ModelKey, Iterator[Job]]],
    sender: _Sender,
    finish: Callable[[dict[str, Any]], None],
    concurrency: int,
    stops: StopRequests,
) -> None:
    """Send every stream's jobs, up to ``concurrency`` of each stream at once and
    ``concurrency`` requests in flight in all (the sender holds that limit): a model waiting
    for its budget holds its own workers, never the other models'. Returns (or raises a
    worker's error) only when every worker has ended."""
    errors: list[BaseException] = []
    changed = threading.Condition()
    active = [0] * len(streams)

    def done(future: Future[None], stream: int) -> None:
        with changed:
            active[stream] -= 1
            changed.notify_all()
        if not future.cancelled() and future.exception() is not None:
            errors.append(future.exception())  # type: ignore[arg-type]

    workers = min(concurrency * max(len(streams), 1), 512)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="runner")
    try:
        _hand_out(streams, sender, finish, concurrency, stops, pool, changed, active, done, errors)
        _drain(sender, stops, pool, changed, active, errors)
    finally:
        pool.shutdown(wait=True)
    if errors:
        raise errors[0]


def _hand_out(
    streams: list[tuple[ModelKey, Iterator[Job]]],
    sender: _Sender,
    finish: Callable[[dict[str, Any]], None],
    concurrency: int,
    stops: StopRequests,
    pool: ThreadPoolExecutor,
    changed: threading.Condition,
    active: list[int],
    done: Callable[..., None],
    errors: list[BaseException],
) -> None:
    """The send: jobs go to workers as they free up, until every stream is empty, a stop is
    asked for, or a worker failed. A model stopped by its limit hands out no more jobs."""
    open_streams = list(range(len(streams)))
    with changed:
        while open_streams and not errors and not stops.stop:
            for stream in list(open_streams):
                key, jobs = streams[stream]
                while active[stream] < concurrency and not sender.stopped(key):
                    try:
                        job = next(jobs, None)
                    except KeyboardInterrupt:  # no handler could be installed (not main thread)
                        stops.note(signal.SIGINT)
                        return
                    if job is None:
                        break
                    active[stream] += 1
                    future = pool.submit(sender.send, job, finish)
                    future.add_done_callback(partial(done, stream=stream))
                else:
                    if not sender.stopped(key):
                        continue
                open_streams.remove(stream)
            if open_streams:
                _wait(changed, stops)


def _drain(
    sender: _Sender,
    stops: StopRequests,
    pool: ThreadPoolExecutor,
    changed: threading.Condition,
    active: list[int],
    errors: list[BaseException],
) -> None:
    """Wait for every worker. After a stop (or a worker's error), requests waiting for their
    turn give up and jobs not started are dropped; when the stop turns into abandoning,
    requests in flight are cut."""
    stopping = abandoning = False
    with changed:
        while any(active):
            if (stops.stop or errors) and not stopping:
                stopping = True
                sender.limits.cancel()
                pool.shutdown(wait=False, cancel_futures=True)
            if stops.abandon() and not abandoning:
                abandoning = True
                sender.abandon()
            _wait(changed, stops)


def _wait(changed: threading.Condition, stops: StopRequests) -> None:
    try:
        changed.wait(0.25)
    except KeyboardInterrupt:  # no handler could be installed (not the main thread)
        stops.note(signal.SIGINT)


@dataclass(frozen=True)
class _Answer:
    """Where one job's answer came from and what it was, before it becomes a record."""

    result: HttpResult
    started_at: str
    clock: float  # perf_counter when the (first) attempt left
    response: Any = None  # the completion, when it did not come as HTTP text
    streamed: StreamedAnswer | None = None
    cached: bool = False
    too_large: bool = False  # more than the token limit: failed without being sent


class _Sender:
    """Answers one job (from the cache or a cassette, the offline provider, or over HTTP)
    and makes its record."""

    def __init__(
        self,
        settings: RunSettings,
        answers: AnswerSource | None = None,
        text: TextSink | None = None,
        on_wait: Callable[[Wait | None], None] | None = None,
        earlier: EarlierAnswers | None = None,
        on_retry: Callable[[str], None] | None = None,
    ):
        self.settings = settings
        self.earlier = earlier  # a resumed run's answers whose judges failed
        self.on_retry = on_retry  # told why each attempt that is sent again failed
        self.limits = Limits(settings.rpm, settings.tpm, settings.max_wait, on_wait)
        # Requests on the wire at once; workers waiting for their turn do not count.
        self.gate = Gate(settings.concurrency)
        # A model whose requests all fail alike (a wrong key, a retired model) stops sending.
        self.breaker = Breaker(self.limits.cancelled)
        self.answers = answers
        self.text = text
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
        if job.render_error is not None:
            record = not_sent_record(job.record_id, job.request, job.endpoint, job.render_error)
            if finish is not None:
                finish(record)
            return record
        key, stored = _stored_answer(self.answers, job)
        if stored is None and self.earlier is not None:
            stored = self.earlier.get(job.record_id, job.request.recorded_body)
        answer = self._from_store(stored) if stored is not None else self._answer(job)
        if answer is None:
            return None
        record = self._record(job, answer)
        if job.request.spec.judges:
            # The answer is cached before its judges are asked: a run stopped meanwhile
            # finds it there when resumed, and asks only the judges.
            self._keep(key, job, answer, record)
            key = None
            record = self.judged(job.request, job.judge_endpoints, record)
        if finish is not None:
            finish(record)
        self._keep(key, job, answer, record)
        return record

    def _answer(self, job: Job) -> _Answer | None:
        if job.endpoint.offline:
            return self._offline(job)
        if self.client is None:
            error = "the replay cassette has no answer for it"
            return _Answer(HttpResult(None, {}, None, 0, error), utc_now(), time.perf_counter())
        return self._over_http(job)

    def _from_store(self, stored: CachedResponse) -> _Answer:
        result = HttpResult(stored.status, {}, stored.text, 0)
        return _Answer(result, utc_now(), time.perf_counter(), cached=True)

    def _offline(self, job: Job) -> _Answer:
        body = job.request.body
        started_at, clock = utc_now(), time.perf_counter()
        if body.get("stream") is True:
            streamed = stream_offline(body, None if job.quiet else self.text)
            return _Answer(streamed.result, started_at, clock, streamed.completion, streamed)
        from runner.send import offline  # only runs that use it pay for importing it

        return _Answer(HttpResult(200, {}, None, 1), started_at, clock, offline.complete(body))

    def _record(self, job: Job, answer: _Answer) -> dict[str, Any]:
        latency_ms = round((time.perf_counter() - answer.clock) * 1000.0, 3)
        attempt = Attempt(answer.result, answer.started_at, latency_ms, cached=answer.cached)
        streamed = answer.streamed
        if streamed is not None:
            attempt = replace(
                attempt,
                stream=streamed.timing,
                stream_failure=streamed.failure,
                partial_text=streamed.partial_text,
            )
        record = build_record(job.record_id, job.request, job.endpoint, attempt, answer.response)
        if answer.too_large:
            record["error"]["kind"] = "too_large"
        return record

    def _keep(self, key: str | None, job: Job, answer: _Answer, record: dict[str, Any]) -> None:
        """Put a new good answer in the cache."""
        if key and self.answers is not None and not answer.cached and record["output"]:
            self.answers.put(key, job.endpoint.completions_url, 200, answer.result.text or "")

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

    def _over_http(self, job: Job) -> _Answer | None:
        """Send one job, once its model's requests have not all failed alike (see
        runner/runs/breaker.py). None when it is not sent, or abandoned in flight."""
        model = str(job.request.body.get("model", ""))
        key = (job.endpoint.completions_url, model)
        if not self.breaker.enter(key):
            return None
        answer: _Answer | None = None
        try:
            answer = self._sent_over_http(job, model)
        finally:
            result = answer.result if answer is not None and not answer.too_large else None
            self.breaker.leave(key, job.endpoint, model, result)
        return answer

    def _sent_over_http(self, job: Job, model: str) -> _Answer | None:
        """Send one job through its model's limiter, with retries. None when the run stops
        before the job is sent, or abandons it in flight."""
        assert self.client is not None
        client, endpoint, settings = self.client, job.endpoint, self.settings
        body = job.request.body
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
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
            started()
            return client.post_chat(endpoint, payload)

        def send_stream() -> StreamedAnswer:
            started()
            text = self.breaker.at_first_text(
                (endpoint.completions_url, model), None if job.quiet else self.text
            )
            return stream_once(client, endpoint, payload, settings.timeouts, text)

        tokens = token_estimate(body)
        stop = self.limits.cancelled
        try:
            if body.get("stream") is True:
                streamed, attempts = send_with_retries(
                    send_stream,
                    limiter,
                    tokens,
                    settings.retry,
                    stop,
                    _result_of,
                    _may_retry,
                    self.gate,
                    self._retrying,
                )
                result = replace(streamed.result, attempts=attempts)
                if result.abandoned:
                    return None
                return _Answer(result, *first[0], streamed.completion, streamed)
            result = send_whole_with_retries(
                send_whole, limiter, tokens, settings.retry, stop, self.gate, self._retrying
            )
        except NeverFits as exc:
            result = HttpResult(None, {}, None, 0, str(exc))
            return _Answer(result, utc_now(), time.perf_counter(), too_large=True)
        except LongWait as exc:
            limiter.stop(exc)  # this model waits for its reset; the others go on
            return None
        except Cancelled:
            return None
        if result.abandoned:
            return None
        return _Answer(result, *first[0])

    def _retrying(self, result: HttpResult) -> None:
        if self.on_retry is not None:
            reason = f"HTTP {result.status}" if result.status is not None else result.error
            self.on_retry(reason or "a failed attempt")

    def stopped(self, key: ModelKey) -> bool:
        """Whether a model's limit, or its requests failing alike, stopped its requests for
        the rest of the run."""
        limiter = self.limits.existing(key)
        return (limiter is not None and limiter.stopped is not None) or self.breaker.stopped(key)

    def abandon(self) -> None:
        """Cut the requests in flight: they end now, without a record."""
        self.limits.cancel()
        if self.client is not None:
            self.client.abandon()

    def cache_problem(self) -> str | None:
        """Why answers could not be kept in the cache, if some could not."""
        return getattr(self.answers, "write_problem", None)

    def close(self) -> None:
        """Close the HTTP client and the cache (call only when no worker runs)."""
        try:
            if self.client is not None:
                self.client.close()
        finally:
            if self.earlier is not None:
                self.earlier.close()
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
