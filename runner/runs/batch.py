"""Send a run's requests through the provider's Batch API and bring the answers back as records.

``submit`` renders every request exactly as ``runner run`` would; requests the response cache
already answers and cases whose templates fail get their records at once, the rest are streamed
into JSONL input files under ``RUN_DIR/batch/`` (split by provider, model and the provider's
limits on lines and bytes per file), uploaded and turned into batches. The offline
provider's requests take the same steps through its own Batch API (``send/offline_batch.py``),
which keeps files and batches in ``batch/offline/`` and answers them locally.
``fetch`` downloads the output and error files, indexes their lines in SQLite on disk, and
walks the run's plan again to build each request's record with ``record.py``, the same record a
synchronous run saves; answers also go into the response cache. Nothing holds all requests in
memory, every step is saved as it completes, and fetch can be run again at any time.

Run directory additions::

    batch/state.json         every part: its input file, provider, model, file and batch ids,
                             the batch object last seen, whether its results are fetched
    batch/input-NNN.jsonl    the requests of part NNN (one BatchRequestInput per line)
    batch/output-NNN.jsonl   the provider's output file of part NNN, as downloaded
    batch/errors-NNN.jsonl   the provider's error file of part NNN, as downloaded
    batch/index.sqlite       which part holds each request, and the lines of the fetched files
    batch/offline/           the offline provider's uploaded files, batches and output files
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from runner.errors import UsageError, agree, plural
from runner.files import open_private, private_database
from runner.providers.endpoints import Endpoint, chosen_routes, endpoint_from_run
from runner.providers.trust import remember_run
from runner.runs.cache import ResponseCache, cache_path_for, request_key
from runner.runs.cost import CostTally
from runner.runs.execute import (
    Job,
    RunSettings,
    RunSummary,
    _check_case_ids,
    _endpoints,
    _finish_manifest,
    _manifest,
    _open_answers,
    _plan,
    _record_ids,
    _reload,
    _Sender,
    _stored_answer,
)
from runner.runs.record import Attempt, build_record
from runner.runs.store import RecordWriter, RunStore, write_json_atomic
from runner.send.batch_api import LINE_URL, BatchApiError, BatchClient
from runner.send.offline_batch import BatchClients, OfflineBatches
from runner.send.transport import HttpResult
from runner.spec.objects import Spec
from runner.spec.project import find_project_root

BATCH_DIR = "batch"
STATE = "state.json"
INDEX = "index.sqlite"
OFFLINE_FOLDER = "offline"  # the offline provider's files and batches (send/offline_batch.py)
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

# Per input file: OpenAI documents 50,000 requests and 200 MB
# (https://platform.openai.com/docs/guides/batch). Groq: its SDK documents 100 MB per batch file;
# its batch guide (https://console.groq.com/docs/batch, read 2026-12-08) gives the 50% discount
# and the 24h-7d window, but in the copies searched no lines-per-file figure, so OpenAI's 50,000
# stays the default (--max-lines sets another).
MiB = 1024 * 1024
PROVIDER_LIMITS: dict[str, tuple[int, int]] = {
    "groq": (50_000, 100 * MiB),
    "openai": (50_000, 200 * MiB),
}
DEFAULT_LIMITS = (50_000, 100 * MiB)
# Groq takes durations from 24h to 7d; OpenAI takes 24h (and says so if given more).
WINDOW = re.compile(r"([1-9][0-9]*)([hd])")


@dataclass(frozen=True)
class BatchOptions:
    """How a run is cut into batches; None takes the provider's documented limit."""

    completion_window: str = "24h"
    max_lines: int | None = None
    max_bytes: int | None = None

    def limits(self, endpoint: Endpoint) -> tuple[int, int]:
        lines, size = PROVIDER_LIMITS.get(endpoint.name, DEFAULT_LIMITS)
        return self.max_lines or lines, self.max_bytes or size


@dataclass
class Part:
    """One input file and the batch made from it."""

    index: int
    input: str
    provider: dict[str, Any]
    model: str
    lines: int = 0
    bytes: int = 0
    file_id: str | None = None
    batch_id: str | None = None
    batch: dict[str, Any] | None = None  # the batch object as last seen
    fetched: bool = False
    saved: bool = False  # its records are in results.jsonl: a later fetch has nothing new

    @property
    def status(self) -> str:
        if self.batch_id is None:
            return "not_created"
        return str((self.batch or {}).get("status") or "unknown")

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def counts(self) -> dict[str, int]:
        counts = (self.batch or {}).get("request_counts") or {}
        return {k: int(counts.get(k) or 0) for k in ("total", "completed", "failed")}


@dataclass
class BatchState:
    """``batch/state.json``: the options and every part of a batch run."""

    options: BatchOptions
    parts: list[Part] = field(default_factory=list)

    @classmethod
    def load(cls, store: RunStore) -> BatchState:
        path = store.root / BATCH_DIR / STATE
        if not path.is_file():
            raise UsageError(f"{store.root} is not a batch run (it has no {BATCH_DIR}/{STATE})")
        for temp in path.parent.glob(".*.tmp"):  # half-written by a command that was killed
            temp.unlink(missing_ok=True)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(BatchOptions(**data["options"]), [Part(**p) for p in data["parts"]])

    def save(self, store: RunStore) -> None:
        data = {"options": asdict(self.options), "parts": [asdict(p) for p in self.parts]}
        write_json_atomic(store.root / BATCH_DIR / STATE, data)


@dataclass(frozen=True)
class BatchStatus:
    """Where each part of a batch run stands."""

    run_dir: Path
    parts: tuple[Part, ...]

    @property
    def done(self) -> bool:
        return all(p.terminal for p in self.parts)

    @property
    def not_created(self) -> int:
        """How many parts have no batch yet (a submit that stopped before creating them)."""
        return sum(1 for p in self.parts if p.batch_id is None)

    @property
    def settled(self) -> bool:
        """Whether polling can stop: every batch that exists has ended."""
        return all(p.terminal for p in self.parts if p.batch_id is not None)

    def describe(self) -> str:
        lines = []
        for p in self.parts:
            c = p.counts()
            lines.append(
                f"part {p.index}: {p.batch_id or '-'} {p.status:<11} {c['completed']} done, "
                f"{c['failed']} failed of {c['total'] or p.lines} ({p.model}, {p.provider['name']})"
                + (", fetched" if p.fetched else "")
            )
        if not self.parts:
            lines.append("nothing was submitted (every request was answered at once)")
        elif self.not_created:
            lines.append(
                f"{plural(self.not_created, 'part')} {agree(self.not_created, 'has', 'have')} "
                "no batch yet: finish the submit with "
                f"runner batch submit --resume {self.run_dir}"
            )
        elif self.done and not all(p.fetched for p in self.parts):
            lines.append(f"every batch has ended: runner batch fetch {self.run_dir}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "done": self.done,
            "parts": [
                {
                    "part": p.index,
                    "batch_id": p.batch_id,
                    "status": p.status,
                    "request_counts": p.counts(),
                    "lines": p.lines,
                    "model": p.model,
                    "provider": p.provider["name"],
                    "fetched": p.fetched,
                }
                for p in self.parts
            ],
        }


@dataclass
class BatchResult:
    """What submit or fetch did: the records made now, and the run's counts afterwards."""

    summary: RunSummary
    status: BatchStatus
    counts: dict[str, int]
    waiting: int = 0  # requests whose batch has not ended yet
    judged: bool = False  # a spec has judge: checks (their judges are not asked in Batch)

    @property
    def succeeded(self) -> bool:
        return all(self.counts.get(k, 0) == 0 for k in ("failed", "invalid_output", "not_sent"))

    def describe(self, verb: str) -> str:
        run_dir = self.summary.run_dir
        s = self.summary
        written = (
            f"{verb}: {plural(s.total, 'record')} written now ({s.ok} ok, {s.failed} failed, "
            f"{s.invalid_output} invalid output"
            + (f", {s.cached} from cache" if s.cached else "")
            + ")"
        )
        if verb == "submitted" and s.total == 0:
            written = "submitted: every request went into a batch (none was answered at once)"
        if verb == "fetched" and s.total == 0:
            written = (
                "fetched: nothing new (the records of every batch that has ended were "
                "saved by an earlier fetch)"
                if any(p.saved for p in self.status.parts)
                else "fetched: nothing yet (no batch has ended)"
            )
        lines = [written, self.status.describe()]
        lines.extend(s.failures.describe())
        unjudged = s.judges.without_verdict
        if unjudged or (self.judged and self.waiting):
            count = (
                f"{plural(unjudged, 'judge check')} {agree(unjudged, 'has', 'have')}"
                if unjudged
                else "judge: checks will have"
            )
            lines.append(
                f"{count} no verdict yet: judges are not asked through the Batch API; once "
                f"every batch is fetched, runner score {run_dir} asks them"
            )
        if self.waiting and not self.status.not_created:
            lines.append(
                f"{plural(self.waiting, 'request')} {agree(self.waiting, 'waits', 'wait')} "
                "for their batch: runner batch status "
                f"{run_dir} --watch, then runner batch fetch {run_dir}"
            )
        elif self.counts.get("failed"):
            lines.append(
                f"submit the failed ones again with: runner batch submit --resume {run_dir}"
            )
        lines.append(f"saved in {run_dir}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary.to_json(),
            "batch": self.status.to_json(),
            "counts": self.counts,
            "waiting": self.waiting,
            "succeeded": self.succeeded,
        }


# ---- submit


def submit_batch(
    specs: list[Spec], settings: RunSettings, options: BatchOptions, out_dir: Path
) -> BatchResult:
    """Render the specs' requests into a new run directory and submit them as batches."""
    _check_window(options.completion_window)
    _check_case_ids(specs, settings.selection)
    endpoints = _endpoints(specs, settings)
    answers = _open_answers(specs, endpoints, settings)
    store = RunStore.create(out_dir)
    store.lock("runner batch submit")  # one writer per run (runner/runs/lock.py)
    try:
        remember_run(store.root, chosen_routes(endpoints.values(), settings.provider))
        manifest = _manifest(store, specs, settings, "running")
        manifest["mode"] = "batch"
        store.write_manifest(manifest)
        (store.root / BATCH_DIR).mkdir()
        state = BatchState(options)
        state.save(store)
        return _submit(store, specs, settings, state, endpoints, answers, frozenset())
    finally:
        store.unlock()


def _check_window(window: str) -> None:
    match = WINDOW.fullmatch(window)
    hours = int(match[1]) * (24 if match[2] == "d" else 1) if match else 0
    if not 24 <= hours <= 168:
        raise UsageError(
            f"--completion-window {window!r}: give hours or days from 24h to 7d, such as 24h, "
            "48h or 7d (OpenAI takes only 24h)"
        )


def resume_batch(run_dir: Path, load: Callable[[Path], Spec]) -> BatchResult:
    """Finish an interrupted submit, or submit again what has no answer after a fetch."""
    store = RunStore.open(run_dir)
    store.lock("runner batch submit --resume")  # one writer per run (runner/runs/lock.py)
    try:
        settings = RunSettings.from_json(store.read_manifest()["settings"], store.root)
        state = BatchState.load(store)
        specs = [_reload(entry, load) for entry in store.read_manifest()["specs"]]
        endpoints = _endpoints(specs, settings)
        if any(p.batch_id is None for p in state.parts):
            # A submit stopped before every batch existed: create the rest.
            summary = RunSummary(store.root, resumed=len(store.completed_ids()))
            return _create_and_result(store, specs, settings, state, summary)
        running = [p for p in state.parts if not (p.terminal and p.fetched)]
        if running:
            names = ", ".join(f"part {p.index} ({p.batch_id}: {p.status})" for p in running)
            raise UsageError(
                f"{names} not fetched yet: wait for it and run runner batch fetch {run_dir} "
                f"(or runner batch cancel {run_dir}) before submitting again"
            )
        answers = _open_answers(specs, endpoints, settings)
        return _submit(store, specs, settings, state, endpoints, answers, store.completed_ids())
    finally:
        store.unlock()


def _submit(
    store: RunStore,
    specs: list[Spec],
    settings: RunSettings,
    state: BatchState,
    endpoints: dict[Any, Endpoint],
    answers: Any,
    done: Collection[str],
) -> BatchResult:
    summary = RunSummary(store.root, resumed=len(done))
    sender = _Sender(settings, answers)
    writer = RecordWriter(store)
    parts = _PartWriter(store.root / BATCH_DIR, state)
    index = BatchIndex(store.root / BATCH_DIR / INDEX)

    def finish(record: dict[str, Any]) -> None:
        writer.put(record)
        summary.add(record)

    try:
        for job in _plan(specs, settings, endpoints):
            if job.record_id in done:
                continue
            if job.render_error is None:
                _, stored = _stored_answer(answers, job)
                if stored is None:
                    index.assign(job.record_id, parts.add(job, state.options))
                    continue
            sender.send(job, finish)  # a render error or a cached answer
    finally:
        parts.close()
        index.close()
        sender.close()
        writer.close()
        store.close()
    state.parts.extend(parts.new_parts)
    state.save(store)
    return _create_and_result(store, specs, settings, state, summary)


def _create_and_result(
    store: RunStore,
    specs: list[Spec],
    settings: RunSettings,
    state: BatchState,
    summary: RunSummary,
) -> BatchResult:
    """Create the batches not created yet; the manifest is brought up to date either way."""
    try:
        _create_batches(store, state, settings)
    finally:
        result = _result(store, specs, settings, state, summary)
    return result


class _PartWriter:
    """Streams lines into one open input file per (provider, model), starting a new file when
    the next line would pass the provider's limits."""

    def __init__(self, folder: Path, state: BatchState):
        self.folder = folder
        self.next_index = len(state.parts)
        self.new_parts: list[Part] = []
        self._open: dict[tuple[Any, str], tuple[Part, IO[bytes]]] = {}

    def add(self, job: Job, options: BatchOptions) -> int:
        body = job.request.body
        model = str(body.get("model") or "")
        line = (
            json.dumps(
                {"custom_id": job.record_id, "method": "POST", "url": LINE_URL, "body": body},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode("utf-8")
            + b"\n"
        )
        max_lines, max_bytes = options.limits(job.endpoint)
        if len(line) > max_bytes:
            raise UsageError(
                f"the request {job.record_id} ({job.request.spec.display}) takes {len(line)} "
                f"bytes, more than the {max_bytes} bytes a batch file may hold"
            )
        key = (job.endpoint, model)
        current = self._open.get(key)
        if current is not None and (
            current[0].lines + 1 > max_lines or current[0].bytes + len(line) > max_bytes
        ):
            current[1].close()
            current = None
        if current is None:
            part = Part(
                self.next_index,
                f"input-{self.next_index:03d}.jsonl",
                job.endpoint.describe(),
                model,
            )
            self.next_index += 1
            self.new_parts.append(part)
            current = (part, open_private(self.folder / part.input, "wb"))
            self._open[key] = current
        part, handle = current
        handle.write(line)
        part.lines += 1
        part.bytes += len(line)
        return part.index

    def close(self) -> None:
        for _, handle in self._open.values():
            handle.close()
        self._open.clear()


def _client(store: RunStore, settings: RunSettings) -> BatchClients:
    """The Batch API calls of one command: over HTTP, or on disk in ``batch/offline/`` for the
    offline provider (the same steps, answered locally)."""
    return BatchClients(
        OfflineBatches(store.root / BATCH_DIR / OFFLINE_FOLDER),
        lambda: BatchClient(settings.retry, settings.timeouts),
    )


def _create_batches(store: RunStore, state: BatchState, settings: RunSettings) -> None:
    """Upload each part's input file and create its batch, saving the state after each step."""
    client = _client(store, settings)
    try:
        for part in state.parts:
            if part.batch_id is not None:
                continue
            endpoint = _part_endpoint(store, part)
            if part.file_id is None:
                uploaded = client.upload(endpoint, store.root / BATCH_DIR / part.input)
                part.file_id = str(uploaded["id"])
                state.save(store)
            metadata = {"runner_run": store.run_id, "runner_part": str(part.index)}
            created = client.create_batch(
                endpoint, part.file_id, state.options.completion_window, metadata
            )
            part.batch_id, part.batch = str(created["id"]), created
            state.save(store)
    except BatchApiError as exc:
        raise BatchApiError(
            f"{exc}; what is done so far is saved: finish with "
            f"runner batch submit --resume {store.root}"
        ) from None
    finally:
        client.close()


def _part_endpoint(store: RunStore, part: Part) -> Endpoint:
    """The endpoint a part was sent to, with its key read again from the environment: only
    to a server the user chose (the run folder's batch state names it, and a run folder
    cannot choose)."""
    specs = store.read_manifest().get("specs") or []
    projects = [find_project_root(Path(e["file"])) for e in specs if isinstance(e.get("file"), str)]
    return endpoint_from_run(part.provider, store.root, projects)


# ---- status and cancel


def batch_status(run_dir: Path) -> BatchStatus:
    """Ask the provider where each unfinished batch of the run stands; save what it says."""
    store = RunStore.open(run_dir)
    state = BatchState.load(store)
    settings = RunSettings.from_json(store.read_manifest()["settings"], store.root)
    _refresh(store, state, settings)
    return BatchStatus(store.root, tuple(state.parts))


def watch_status(
    run_dir: Path,
    interval: float,
    show: Callable[[BatchStatus], None],
    sleep: Callable[[float], None] = time.sleep,
) -> BatchStatus:
    """Poll the run's batches every ``interval`` seconds, showing each poll, until all end.

    Parts a stopped submit never created are not waited for: only ``submit --resume`` makes them.
    """
    while True:
        status = batch_status(run_dir)
        show(status)
        if status.settled:
            return status
        sleep(interval)


def cancel_batches(run_dir: Path) -> BatchStatus:
    """Ask the provider to cancel every batch of the run that has not ended."""
    store = RunStore.open(run_dir)
    state = BatchState.load(store)
    settings = RunSettings.from_json(store.read_manifest()["settings"], store.root)
    _refresh(store, state, settings, cancel=True)
    return BatchStatus(store.root, tuple(state.parts))


def _refresh(
    store: RunStore, state: BatchState, settings: RunSettings, cancel: bool = False
) -> None:
    """Read (or cancel) every batch that has not ended, saving each answer as it comes."""
    client = _client(store, settings)
    call = client.cancel_batch if cancel else client.get_batch
    try:
        for part in state.parts:
            if part.batch_id is not None and not part.terminal:
                part.batch = call(_part_endpoint(store, part), part.batch_id)
                state.save(store)
    finally:
        client.close()


# ---- fetch


def fetch_batch(run_dir: Path, load: Callable[[Path], Spec]) -> BatchResult:
    """Download the results of every ended batch and save one record per request.

    Safe to run again: downloads are atomic and skipped once indexed, records are rewritten
    whole, so a fetch killed at any point finishes when run again.
    """
    store = RunStore.open(run_dir)
    store.lock("runner batch fetch")  # one writer per run (runner/runs/lock.py)
    try:
        manifest = store.read_manifest()
        settings = RunSettings.from_json(manifest["settings"], store.root)
        state = BatchState.load(store)
        specs = [_reload(entry, load) for entry in manifest["specs"]]
        endpoints = _endpoints(specs, settings)
        _refresh(store, state, settings)
        folder = store.root / BATCH_DIR
        index = BatchIndex(folder / INDEX)
        try:
            _download(store, state, settings, index)
            summary, waiting = _save_records(store, specs, settings, state, endpoints, index)
        finally:
            index.close()
        return _result(store, specs, settings, state, summary, waiting)
    finally:
        store.unlock()


def _download(store: RunStore, state: BatchState, settings: RunSettings, index: BatchIndex) -> None:
    folder = store.root / BATCH_DIR
    client = _client(store, settings)
    try:
        for part in state.parts:
            if not part.terminal or part.fetched:
                continue
            batch = part.batch or {}
            files = []
            for kind, key in (("output", "output_file_id"), ("errors", "error_file_id")):
                file_id = batch.get(key)
                if not file_id:
                    continue
                target = folder / f"{kind}-{part.index:03d}.jsonl"
                if not target.is_file():
                    client.download(_part_endpoint(store, part), str(file_id), target)
                files.append(target)
            index.load_answers(part.index, files)
            part.fetched = True
            state.save(store)
    finally:
        client.close()


def _save_records(
    store: RunStore,
    specs: list[Spec],
    settings: RunSettings,
    state: BatchState,
    endpoints: dict[Any, Endpoint],
    index: BatchIndex,
) -> tuple[RunSummary, int]:
    summary = RunSummary(store.root)
    cache = (
        ResponseCache(cache_path_for(specs[0].path), settings.cache)
        if settings.cache != "off" and specs
        else None
    )
    writer = RecordWriter(store)
    waiting = 0
    saving = [p for p in state.parts if p.fetched and not p.saved]
    try:
        for job in _plan(specs, settings, endpoints):
            found = index.lookup(job.record_id)
            if found is None:
                continue  # answered at submit time (from the cache, or a render error)
            part_index, line = found
            part = state.parts[part_index]
            if not part.fetched:
                waiting += 1
                continue
            if part.saved:
                continue  # written by an earlier fetch: nothing new
            record = _record_from_line(job, part, line)
            writer.put(record)
            summary.add(record)
            if cache is not None and record["output"] is not None:
                url = job.endpoint.completions_url
                text = json.dumps(record["response"], ensure_ascii=False)
                cache.put(request_key(url, job.request.body), url, 200, text)
    finally:
        writer.close()
        store.close()
        if cache is not None:
            cache.close()
    for part in saving:  # only once every record is on disk: a killed fetch writes them again
        part.saved = True
    if saving:
        state.save(store)
    return summary, waiting


def _record_from_line(job: Job, part: Part, line: str | None) -> dict[str, Any]:
    """The record of one request from its line in the output or error file (or its absence)."""
    batch = part.batch or {}
    created = batch.get("created_at")
    ended = next(
        (
            batch[k]
            for k in ("completed_at", "expired_at", "cancelled_at", "failed_at")
            if batch.get(k)
        ),
        None,
    )
    started_at = _iso(batch.get("in_progress_at") or created)
    latency = float(ended - created) * 1000.0 if ended and created else 0.0
    data = _parse(line)
    response = data.get("response") if isinstance(data.get("response"), dict) else None
    if response is not None and isinstance(response.get("status_code"), int):
        text = json.dumps(response.get("body"), ensure_ascii=False)
        result = HttpResult(response["status_code"], {}, text, 1)
        record = build_record(
            job.record_id, job.request, job.endpoint, Attempt(result, started_at, latency)
        )
    else:
        reason = _failure_reason(part, data, line)
        result = HttpResult(None, {}, None, 0, reason)
        record = build_record(
            job.record_id, job.request, job.endpoint, Attempt(result, started_at, latency)
        )
        record["error"] = {"kind": "batch", "message": reason}
    record["batch"] = {
        "batch_id": part.batch_id,
        "part": part.index,
        "request_id": (response or {}).get("request_id"),
    }
    if ended:
        record["finished_at"] = _iso(ended)
    return record


def _failure_reason(part: Part, data: dict[str, Any], line: str | None) -> str:
    status = part.status
    error = data.get("error") if isinstance(data.get("error"), dict) else None
    if error is not None:
        code = error.get("code")
        message = error.get("message") or "no reason given"
        return f"the batch {part.batch_id} ({status}) did not answer it: " + (
            f"{code}: {message}" if code else message
        )
    if line is not None:
        return (
            f"the batch {part.batch_id} ({status}) gave a line that is not a result: {line[:200]}"
        )
    errors = ((part.batch or {}).get("errors") or {}).get("data") or []
    reasons = "; ".join(
        str(e.get("message")) + (f" (line {e['line']})" if e.get("line") else "")
        for e in errors[:5]
        if isinstance(e, dict)
    )
    if status == "failed":
        return f"the batch {part.batch_id} failed: {reasons or 'no reason given'}"
    return f"the batch {part.batch_id} ended {status} without an answer for it"


def _parse(line: str | None) -> dict[str, Any]:
    if not line:
        return {}
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _iso(unix: Any) -> str:
    if not isinstance(unix, (int, float)):
        return ""
    moment = datetime.fromtimestamp(unix, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _result(
    store: RunStore,
    specs: list[Spec],
    settings: RunSettings,
    state: BatchState,
    summary: RunSummary,
    waiting: int | None = None,
) -> BatchResult:
    """Rebuild results.jsonl and the manifest, and say where the run stands."""
    cost = CostTally()  # priced with the Batch API's discount
    for record in store.records():
        cost.add(record, batch=True)
    counts = _finish_manifest(store, _record_ids(specs, settings.selection), cost=cost)
    summary.expectations = counts["expectations"]
    manifest = store.read_manifest()
    manifest["batch"] = {
        "state": f"{BATCH_DIR}/{STATE}",
        "completion_window": state.options.completion_window,
        "parts": [{"batch_id": p.batch_id, "status": p.status} for p in state.parts],
    }
    store.write_manifest(manifest)
    if waiting is None:
        waiting = sum(p.lines for p in state.parts if not p.fetched)
    judged = any(spec.judges for spec in specs)
    return BatchResult(
        summary, BatchStatus(store.root, tuple(state.parts)), manifest["counts"], waiting, judged
    )


class BatchIndex:
    """``batch/index.sqlite``: which part holds each request, and each fetched line."""

    def __init__(self, path: Path):
        private_database(path)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS requests (custom_id TEXT PRIMARY KEY, part INTEGER)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (custom_id TEXT, part INTEGER, line TEXT, "
            "PRIMARY KEY (custom_id, part))"
        )
        self._pending: list[tuple[str, int]] = []

    def assign(self, custom_id: str, part: int) -> None:
        self._pending.append((custom_id, part))
        if len(self._pending) >= 5000:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO requests VALUES (?, ?)", self._pending)
            self._db.execute("COMMIT")
            self._pending.clear()

    def load_answers(self, part: int, files: list[Path]) -> None:
        """Index every line of a part's output and error files, in one transaction."""
        self._db.execute("BEGIN")
        try:
            for path in files:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    for text in handle:
                        custom_id = _parse(text).get("custom_id")
                        if isinstance(custom_id, str):
                            self._db.execute(
                                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?)",
                                (custom_id, part, text.rstrip("\n")),
                            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def lookup(self, custom_id: str) -> tuple[int, str | None] | None:
        """(part, line) of a submitted request; the line is None when no file has it."""
        row = self._db.execute(
            "SELECT r.part, a.line FROM requests r LEFT JOIN answers a "
            "ON a.custom_id = r.custom_id AND a.part = r.part WHERE r.custom_id = ?",
            (custom_id,),
        ).fetchone()
        return None if row is None else (int(row[0]), row[1])

    def close(self) -> None:
        self._flush()
        self._db.close()


def iter_input_lines(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every line of every input file of a batch run, parsed (for checks and tests)."""
    store = RunStore.open(run_dir)
    for part in BatchState.load(store).parts:
        with open(store.root / BATCH_DIR / part.input, encoding="utf-8") as handle:
            for text in handle:
                yield json.loads(text)
