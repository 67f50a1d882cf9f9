"""The public Python API: validate, render and run specs, and read run directories.

Everything here is re-exported from ``runner`` and listed in ``runner.__all__``; the rest of the
package is private. The CLI is a thin layer over these functions, so both stay in step. Nothing
here prints or exits: mistakes are raised as the error types of ``runner.errors``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from runner.errors import SpecError, UnknownOption, UsageError, warn

if TYPE_CHECKING:
    from runner.check.validate import Validation
    from runner.errors import Problem
    from runner.providers.catalogue import Catalogue
    from runner.results.diff import DiffItem, RunDiff
    from runner.runs.batch import BatchResult
    from runner.runs.execute import RunPlan, RunSettings, RunSummary
    from runner.spec.cases import Selection
    from runner.spec.objects import Spec

# Bumped whenever a public name disappears or a public signature changes incompatibly
# (tests/test_api.py holds the signatures of this version).
API_VERSION = 1

PathLike = str | Path
CacheMode = Literal["use", "refresh", "off"]


@dataclass(frozen=True)
class RenderedRequest:
    """One request a spec would send: its record id and the exact JSON body."""

    id: str
    body: dict[str, Any]
    variables: Mapping[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A tool (function) call of an answer: arguments parsed from JSON, checked against the
    tool's parameters (``errors`` says how they fall short)."""

    id: str | None
    name: str | None
    arguments: Any
    valid: bool | None = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One expectation's result in a record: ``kind`` is the check (``equals``, ``regex``,
    ``judge``, ...), ``target`` what it looked at, ``passed`` its outcome."""

    kind: str
    target: str | None
    passed: bool | None
    message: str | None
    expected: Any
    actual: Any
    score: float | None


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict on an answer: the judge spec (as the check names it), whether the
    check passed, the judge's score and reason, and the whole ``check``."""

    judge: str
    passed: bool | None
    score: float | None
    reason: str | None
    check: Check


@dataclass(frozen=True)
class Record:
    """One saved request and its outcome, as a typed view of a record in a run directory.

    ``raw`` is the record exactly as stored, for fields this view does not name.
    """

    id: str
    spec: str
    spec_path: str
    case_id: str | None
    variables: Mapping[str, Any]
    matrix: Mapping[str, Any]
    model: str | None
    status: str
    text: str | None
    parsed: Any
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    valid: bool | None
    output_errors: tuple[str, ...]
    error: Mapping[str, Any] | None
    usage: Mapping[str, Any] | None
    latency_ms: float | None
    cached: bool
    offline: bool
    expectations: Mapping[str, Any] | None
    stream: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def passed(self) -> bool | None:
        """Whether every expectation passed; None when the record has no expectations."""
        if not self.expectations:
            return None
        return bool(self.expectations.get("passed"))

    @property
    def checks(self) -> tuple[Check, ...]:
        """Every expectation's result, in the order the spec lists them."""
        checks = (self.expectations or {}).get("checks")
        if not isinstance(checks, list):
            return ()
        return tuple(_check(item) for item in checks if isinstance(item, Mapping))

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """The judges' verdicts on this answer (its ``judge:`` checks), typed."""
        return tuple(_verdict(check) for check in self.checks if check.kind == "judge")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        output = data.get("output") or {}
        request = data.get("request") or {}
        case = data.get("case") or {}
        spec = data.get("spec") or {}
        return cls(
            id=data["id"],
            spec=spec.get("name", ""),
            spec_path=spec.get("path", ""),
            case_id=case.get("id"),
            variables=data.get("vars") or {},
            matrix=data.get("matrix") or {},
            model=(data.get("matrix") or {}).get("model") or request.get("model"),
            status=data.get("status", "failed"),
            text=output.get("content"),
            parsed=output.get("parsed"),
            tool_calls=tuple(_tool_call(call) for call in output.get("tool_calls") or ()),
            finish_reason=output.get("finish_reason"),
            valid=output.get("valid"),
            output_errors=tuple(output.get("errors") or ()),
            error=data.get("error"),
            usage=data.get("usage"),
            latency_ms=data.get("latency_ms"),
            cached=bool(data.get("cached")),
            offline=bool(data.get("offline")),
            expectations=data.get("expectations"),
            stream=data.get("stream"),
            raw=data,
        )


def _check(item: Mapping[str, Any]) -> Check:
    passed = item.get("passed")
    return Check(
        kind=str(item.get("check") or ""),
        target=_text_or_none(item.get("target")),
        passed=passed if isinstance(passed, bool) else None,
        message=_text_or_none(item.get("message")),
        expected=item.get("expected"),
        actual=item.get("actual"),
        score=_number_or_none(item.get("score")),
    )


def _verdict(check: Check) -> Verdict:
    actual = check.actual if isinstance(check.actual, Mapping) else {}
    return Verdict(
        judge=check.target or "",
        passed=check.passed,
        score=check.score if check.score is not None else _number_or_none(actual.get("score")),
        reason=_text_or_none(actual.get("reason")) or check.message,
        check=check,
    )


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number_or_none(value: Any) -> float | None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value if is_number else None


def _tool_call(call: Mapping[str, Any]) -> ToolCall:
    return ToolCall(
        id=call.get("id"),
        name=call.get("name"),
        arguments=call.get("arguments"),
        valid=call.get("valid"),
        errors=tuple(call.get("errors") or ()),
    )


class Run:
    """A run directory opened for reading. Records are read lazily, in plan order."""

    def __init__(self, path: PathLike):
        from runner.runs.store import RunStore

        self.path = _run_dir(path)
        self._store = RunStore.open(self.path)
        self.manifest: Mapping[str, Any] = self._store.read_manifest()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def id(self) -> str:
        return str(self.manifest.get("run_id", self.path.name))

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", ""))

    @property
    def counts(self) -> Mapping[str, Any]:
        return self.manifest.get("counts") or {}

    def __iter__(self) -> Iterator[Record]:
        return self.records()

    def records(self) -> Iterator[Record]:
        """Every record of the run as a typed ``Record``, one at a time."""
        for data in self._store.records():
            yield Record.from_json(data)

    def raw_records(self) -> Iterator[dict[str, Any]]:
        """Every record exactly as stored (plain JSON dicts), one at a time."""
        yield from self._store.records()

    def rows(self) -> Iterator[dict[str, Any]]:
        """One flat dict per record (the columns of ``runner export --format csv``)."""
        return record_rows(self.raw_records())


@dataclass(frozen=True)
class RunOptions:
    """How a run sends its requests: the options of ``runner run``, with the same defaults."""

    provider: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    allow_key_env: tuple[str, ...] = ()
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    retries: int = 5
    backoff: float = 0.5
    max_wait: float = 120.0
    timeout: float = 120.0
    idle_timeout: float = 30.0
    stream: bool | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    cases: tuple[str, ...] = ()
    limit: int | None = None
    sample: int | None = None
    sample_seed: int = 0
    cache: CacheMode = "use"
    replay: PathLike | None = None

    def settings(self, dry_run: bool = False) -> RunSettings:
        """The executor's settings for these options (a dry run needs no API key)."""
        from runner.providers.endpoints import ProviderOverride
        from runner.runs.execute import RunSettings
        from runner.send.transport import RetryPolicy, Timeouts

        self._check_ranges()
        replay = Path(self.replay).resolve() if self.replay is not None else None
        return RunSettings(
            provider=ProviderOverride(
                self.provider,
                self.base_url,
                self.api_key_env,
                require_key=not (dry_run or replay),
            ),
            concurrency=self.concurrency,
            rpm=self.rpm,
            tpm=self.tpm,
            retry=RetryPolicy(retries=self.retries, backoff_factor=self.backoff),
            max_wait=self.max_wait,
            timeouts=Timeouts(read=self.timeout, idle=self.idle_timeout),
            variables=dict(self.variables),
            cache=self.cache,
            replay=str(replay) if replay else None,
            selection=select(self.cases, self.limit, self.sample, self.sample_seed),
            stream=self.stream,
        )

    def _check_ranges(self) -> None:
        """The limits ``runner run``'s options have, for options given from Python."""
        if isinstance(self.cases, str):
            raise UsageError(f"cases takes a list of case ids, not the string {self.cases!r}")
        bounds: list[tuple[str, float | None, float, float, bool]] = [
            ("concurrency", self.concurrency, 1, 512, False),
            ("rpm", self.rpm, 0, float("inf"), True),
            ("tpm", self.tpm, 0, float("inf"), True),
            ("retries", self.retries, 0, 20, False),
            ("backoff", self.backoff, 0, float("inf"), False),
            ("max_wait", self.max_wait, 0, float("inf"), False),
            ("timeout", self.timeout, 0, float("inf"), True),
            ("idle_timeout", self.idle_timeout, 0, float("inf"), True),
        ]
        for name, value, low, high, above in bounds:
            if value is None:
                continue
            if (value <= low if above else value < low) or value > high:
                more = "more than" if above else "at least"
                upto = "" if high == float("inf") else f" and at most {high:g}"
                raise UsageError(f"{name} must be {more} {low:g}{upto}, not {value!r}")


def validate_specs(
    *paths: PathLike,
    variables: Mapping[str, Any] | None = None,
    allow_key_env: Sequence[str] = (),
    provider: str | None = None,
    base_url: str | None = None,
) -> Validation:
    """Check spec files or folders of them; the result holds the good specs and every problem.

    Never raises for a bad spec: look at ``result.ok`` and ``result.problems`` (each with
    ``path``, ``line``, ``column``, ``message`` and ``hint``). ``variables`` are values given
    from outside the specs (as ``--var`` does). ``allow_key_env`` is no longer taken (a
    UsageError says what replaced it: ``runner trust``). ``provider`` and ``base_url``
    override the specs' provider as ``--provider`` and ``--base-url`` do (a spec's model is
    checked against the model catalogue of the provider its requests go to).
    """
    from runner.check.validate import validate_paths
    from runner.providers.trust import refuse_allow_list
    from runner.spec.objects import Provider

    refuse_allow_list(allow_key_env)
    over = None
    if base_url:
        over = Provider(provider or "custom", base_url)
    elif provider:
        over = Provider(provider)
    return validate_paths((Path(p) for p in paths), variables, over)


def load_specs(
    *paths: PathLike,
    variables: Mapping[str, Any] | None = None,
    allow_key_env: Sequence[str] = (),
    provider: str | None = None,
    base_url: str | None = None,
) -> list[Spec]:
    """The specs under ``paths``, validated; raises SpecError listing every problem. Warnings
    (a model close to retirement, say) are issued as ``RunnerWarning``s and the specs returned."""
    result = validate_specs(
        *paths,
        variables=variables,
        allow_key_env=allow_key_env,
        provider=provider,
        base_url=base_url,
    )
    if not result.ok:
        raise SpecError(result.problems)
    for problem in result.warnings:
        warn(problem)
    if not result.specs:
        raise UsageError("no spec files (*.yaml, *.yml) found in the paths given")
    return result.specs


def _load_chosen(paths: Sequence[PathLike], chosen: RunOptions) -> list[Spec]:
    """The specs a run with these options would send, checked against its provider."""
    return load_specs(
        *paths,
        variables=chosen.variables,
        allow_key_env=chosen.allow_key_env,
        provider=chosen.provider,
        base_url=chosen.base_url,
    )


def render_spec(
    spec: Spec | PathLike,
    variables: Mapping[str, Any] | None = None,
    *,
    cases: Sequence[str] = (),
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
) -> list[RenderedRequest]:
    """The request bodies ``spec`` would send, for the selected cases; sends nothing.

    Raises UsageError when no case matches the selection."""
    from runner.spec.render import render_requests

    loaded = spec if not isinstance(spec, str | Path) else _load_one(Path(spec), variables)
    selected = select(cases, limit, sample, sample_seed)
    requests = [
        RenderedRequest(request.record_id, request.body, request.vars)
        for request in render_requests(loaded, variables, selected)
    ]
    if not requests:
        raise UsageError(f"no case of {loaded.display} matches the selection")
    return requests


def plan_specs(*paths: PathLike, options: RunOptions | None = None, **overrides: Any) -> RunPlan:
    """What a run would do, request by request (send, cached, offline, replay); sends nothing."""
    from runner.runs.execute import plan_run

    chosen = _with_overrides(options, overrides)
    specs = _load_chosen(paths, chosen)
    return plan_run(specs, chosen.settings(dry_run=True))


def run_specs(
    *paths: PathLike,
    out: PathLike = "runs",
    options: RunOptions | None = None,
    on_record: Callable[[dict[str, Any], int, int], None] | None = None,
    on_text: Callable[[str], None] | None = None,
    **overrides: Any,
) -> RunSummary:
    """Validate and run specs into a new run directory under ``out``, as ``runner run`` does.

    Options are a ``RunOptions`` or its fields as keyword arguments
    (``run_specs("specs", provider="offline", concurrency=4)``). Returns the summary
    (``summary.run_dir`` is the run directory; read it with ``open_run``).
    ``on_record(record, done, total)`` is called after each record is saved; ``on_text``
    receives the answer's text as it arrives when the run is one streamed request.
    """
    from runner.runs.execute import start_run

    chosen = _with_overrides(options, overrides)
    settings = chosen.settings()
    specs = _load_chosen(paths, chosen)
    return start_run(specs, settings, Path(out), on_record, on_text)


def resume_run(
    run_dir: PathLike,
    on_record: Callable[[dict[str, Any], int, int], None] | None = None,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> RunSummary:
    """Finish an interrupted run: send only the requests without a saved answer.

    A run folder cannot choose where a key goes: the server a run was started with is
    remembered for its folder. ``base_url`` and ``api_key_env`` (the run's own) choose it
    again, for a run folder that was moved or made elsewhere."""
    from runner.providers.endpoints import ProviderOverride
    from runner.runs.execute import resume_run as resume

    chosen = ProviderOverride(base_url=base_url, api_key_env=api_key_env)
    return resume(_run_dir(run_dir), _load_one, on_record, chosen)


def _run_dir(run: PathLike) -> Path:
    """A run folder as the CLI takes it: a path, a run id, ``latest`` or ``latest~N``."""
    from runner.runs.lookup import resolve_run

    return resolve_run(run)


def submit_specs(
    *paths: PathLike,
    out: PathLike = "runs",
    options: RunOptions | None = None,
    completion_window: str = "24h",
    max_lines: int | None = None,
    max_bytes: int | None = None,
) -> BatchResult:
    """Validate specs and submit their requests through the provider's Batch API into a new
    run directory, as ``runner batch submit`` does (a batch answers whole: a spec's
    ``stream: true`` is dropped). Fetch the answers later with ``runner batch fetch``."""
    from runner.runs.batch import BatchOptions, submit_batch

    chosen = replace(options or RunOptions(), concurrency=1, stream=False)
    specs = _load_chosen(paths, chosen)
    batch = BatchOptions(completion_window, max_lines, max_bytes)
    return submit_batch(specs, chosen.settings(), batch, Path(out))


def resume_submit(run_dir: PathLike) -> BatchResult:
    """Finish an interrupted batch submit, or submit again what a fetch left unanswered."""
    from runner.runs.batch import resume_batch

    return resume_batch(Path(run_dir), _load_one)


def open_run(run_dir: PathLike) -> Run:
    """Open a run directory for reading (its manifest, records and rows); ``run_dir`` may also
    be a run id, ``latest`` or ``latest~N`` (in ``runs``, or ``$RUNNER_OUT``)."""
    return Run(run_dir)


def diff_runs(run_a: PathLike, run_b: PathLike) -> RunDiff:
    """Compare two runs record by record, paired by id (``result.identical``, ``.changed``)."""
    from runner.results.diff import diff_runs as diff

    return diff(_run_dir(run_a), _run_dir(run_b))


def iter_diff(run_a: PathLike, run_b: PathLike) -> Iterator[DiffItem]:
    """Compare two runs of any size as ``runner diff`` does, one id at a time: a ``DiffItem``
    per id of A in A's order (``kind`` "paired" with its ``diff``, or "missing"), then the
    ids only in B ("added"). Nothing is held in memory; ``diff_runs`` gathers the same for
    small runs."""
    from runner.results.diff import compare_stores
    from runner.runs.store import RunStore

    yield from compare_stores(RunStore.open(_run_dir(run_a)), RunStore.open(_run_dir(run_b)))


def record_rows(records: Iterable[Mapping[str, Any] | Record]) -> Iterator[dict[str, Any]]:
    """One flat dict per record, for ``pandas.DataFrame(record_rows(...))`` or a csv writer."""
    from runner.results.table import record_row

    for record in records:
        yield record_row(dict(record.raw if isinstance(record, Record) else record))


def select(
    cases: Sequence[str] = (),
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
) -> Selection:
    """Which cases of each spec to use (all when nothing is given)."""
    from runner.spec.cases import Selection

    if limit is not None and sample is not None:
        raise UsageError("give limit or sample, not both")
    for name, value in (("limit", limit), ("sample", sample)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be 1 or more, not {value}")
    return Selection(tuple(cases), limit, sample, sample_seed)


def _with_overrides(options: RunOptions | None, overrides: Mapping[str, Any]) -> RunOptions:
    """``options`` with the keyword arguments given; a name that is no option is a UsageError."""
    known = [f.name for f in fields(RunOptions)]
    for name in overrides:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UnknownOption(
                f"{name!r} is not a run option ({hint}the options are RunOptions' fields: "
                f"{', '.join(known)})"
            )
    return replace(options or RunOptions(), **overrides)


def _load_one(path: Path, variables: Mapping[str, Any] | None = None) -> Spec:
    from runner.check.validate import load_spec

    return load_spec(path, variables)


@dataclass(frozen=True)
class ModelListing:
    """One provider's model catalogue and, when asked online, the ids its ``GET /models``
    lists now."""

    catalogue: Catalogue
    live: tuple[str, ...] | None = None
    live_url: str | None = None

    @property
    def only_live(self) -> list[str]:
        """Ids the provider lists that the catalogue does not know."""
        return [i for i in self.live or () if i not in self.catalogue.models]

    @property
    def only_table(self) -> list[str]:
        """Ids the catalogue has as usable that the provider does not list."""
        live = set(self.live or ())
        return [m.id for m in self.catalogue.current if m.id not in live]


def list_models(
    provider: str | None = None,
    *,
    online: bool = False,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> list[ModelListing]:
    """The model catalogue of ``provider`` (every built-in one when None), as ``runner models``
    prints it; ``online`` also reads the provider's ``GET /models`` with its key."""
    from runner.providers.catalogue import CATALOGUES
    from runner.providers.endpoints import ProviderOverride, resolve_endpoint
    from runner.send.models_api import live_models

    if provider is not None and provider not in CATALOGUES:
        raise UsageError(
            f"runner has no model catalogue for '{provider}': the built-in providers are "
            f"{', '.join(CATALOGUES)}"
        )
    if online and provider is None and base_url:
        raise UsageError("--base-url needs --provider: whose catalogue should it be compared to?")
    names = [provider] if provider else list(CATALOGUES)
    listings = []
    for name in names:
        table = CATALOGUES[name]
        if not online:
            listings.append(ModelListing(table))
            continue
        endpoint = resolve_endpoint(None, ProviderOverride(name, base_url, api_key_env))
        live = live_models(endpoint)
        listings.append(ModelListing(table, tuple(live), f"{endpoint.base_url}/models"))
    return listings


def check_models_online(
    validation: Validation,
    provider: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> list[Problem]:
    """``runner validate --online``: each valid spec's models (the ``model:`` line and a
    matrix's) against the live ``GET /models`` list of the endpoint its requests go to. An id
    the provider does not list is an error (``model-not-served``); the offline provider is
    skipped. Each endpoint's list is read once."""
    from runner.providers.endpoints import ProviderOverride, resolve_endpoint
    from runner.send.models_api import live_models
    from runner.spec.extends import with_bases
    from runner.spec.load import load_yaml
    from runner.spec.project import find_project_root

    override = ProviderOverride(provider, base_url, api_key_env)
    lists: dict[tuple[str | None, str | None], set[str]] = {}
    problems: list[Problem] = []
    for spec in validation.specs:
        endpoint = resolve_endpoint(
            spec.provider, override, project=find_project_root(spec.path), what=spec.display
        )
        if endpoint.offline:
            continue
        key = (endpoint.base_url, endpoint.api_key_env)
        if key not in lists:
            lists[key] = set(live_models(endpoint))
        served = lists[key]
        doc, _ = with_bases(load_yaml(spec.path, spec.display))
        models: list[tuple[tuple[str | int, ...], Any]] = [(("model",), spec.model)]
        models += [(("matrix", "model", i), m) for i, m in enumerate(spec.matrix.get("model", ()))]
        for path, model_id in models:
            if isinstance(model_id, str) and model_id not in served:
                problems.append(
                    doc.problem(
                        path,
                        f"{endpoint.name} does not list the model '{model_id}' "
                        f"(GET {endpoint.base_url}/models)",
                        "pick one it lists: runner models --online shows them",
                        code="model-not-served",
                    )
                )
    return problems
