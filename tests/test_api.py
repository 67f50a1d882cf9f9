"""The public Python API (runner/api.py): each function against the offline provider and the
local server, the stability of public names and signatures, and typing of code that uses it."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import KEY, KEY_ENV, SENTIMENT, WEATHER_TOOL, write_spec

import runner

# The public surface of each API version. A public name that disappears, or a signature that
# changes, must come with a new API_VERSION (and a new entry here).
API_SIGNATURES = {
    1: {
        "validate_specs": (
            "(*paths: 'PathLike', variables: 'Mapping[str, Any] | None' = None, "
            "allow_key_env: 'Sequence[str]' = (), provider: 'str | None' = None, "
            "base_url: 'str | None' = None) -> 'Validation'"
        ),
        "load_specs": (
            "(*paths: 'PathLike', variables: 'Mapping[str, Any] | None' = None, "
            "allow_key_env: 'Sequence[str]' = (), provider: 'str | None' = None, "
            "base_url: 'str | None' = None) -> 'list[Spec]'"
        ),
        "render_spec": (
            "(spec: 'Spec | PathLike', variables: 'Mapping[str, Any] | None' = None, *, "
            "cases: 'Sequence[str]' = (), limit: 'int | None' = None, "
            "sample: 'int | None' = None, sample_seed: 'int' = 0) -> 'list[RenderedRequest]'"
        ),
        "plan_specs": (
            "(*paths: 'PathLike', options: 'RunOptions | None' = None, **overrides: 'Any') "
            "-> 'RunPlan'"
        ),
        "run_specs": (
            "(*paths: 'PathLike', out: 'PathLike' = 'runs', "
            "options: 'RunOptions | None' = None, "
            "on_record: 'Callable[[dict[str, Any], int, int], None] | None' = None, "
            "on_text: 'Callable[[str], None] | None' = None, **overrides: 'Any') "
            "-> 'RunSummary'"
        ),
        "resume_run": (
            "(run_dir: 'PathLike', on_record: 'Callable[[dict[str, Any], int, int], None] "
            "| None' = None, *, base_url: 'str | None' = None, api_key_env: 'str | None' = None) "
            "-> 'RunSummary'"
        ),
        "submit_specs": (
            "(*paths: 'PathLike', out: 'PathLike' = 'runs', "
            "options: 'RunOptions | None' = None, completion_window: 'str' = '24h', "
            "max_lines: 'int | None' = None, max_bytes: 'int | None' = None) -> 'BatchResult'"
        ),
        "resume_submit": "(run_dir: 'PathLike') -> 'BatchResult'",
        "open_run": "(run_dir: 'PathLike') -> 'Run'",
        "diff_runs": "(run_a: 'PathLike', run_b: 'PathLike') -> 'RunDiff'",
        "iter_diff": "(run_a: 'PathLike', run_b: 'PathLike') -> 'Iterator[DiffItem]'",
        "record_rows": (
            "(records: 'Iterable[Mapping[str, Any] | Record]') -> 'Iterator[dict[str, Any]]'"
        ),
        "RunOptions": (
            "(provider: 'str | None' = None, base_url: 'str | None' = None, "
            "api_key_env: 'str | None' = None, allow_key_env: 'tuple[str, ...]' = (), "
            "concurrency: 'int' = 8, rpm: 'float | None' = None, tpm: 'float | None' = None, "
            "retries: 'int' = 5, backoff: 'float' = 0.5, max_wait: 'float' = 120.0, "
            "timeout: 'float' = 120.0, idle_timeout: 'float' = 30.0, "
            "stream: 'bool | None' = None, variables: 'Mapping[str, Any]' = <factory>, "
            "cases: 'tuple[str, ...]' = (), limit: 'int | None' = None, "
            "sample: 'int | None' = None, sample_seed: 'int' = 0, "
            "cache: 'CacheMode' = 'use', replay: 'PathLike | None' = None) -> None"
        ),
        "Record": None,
        "Check": None,
        "Verdict": None,
        "RenderedRequest": None,
        "Run": None,
        "ToolCall": None,
        "Problem": None,
        "RunnerError": None,
        "RunnerWarning": None,
        "SpecError": None,
        "UsageError": None,
        "RenderError": None,
        "RunInterrupted": None,
        "RunRefused": None,
    }
}


def test_public_names_and_signatures_match_the_api_version():
    expected = API_SIGNATURES[runner.API_VERSION]
    for name, signature in expected.items():
        assert name in runner.__all__, f"{name} left the public API without a new API_VERSION"
        value = getattr(runner, name)
        if signature is not None:
            assert str(inspect.signature(value)) == signature, name
    assert set(runner.__all__) <= {*expected, "API_VERSION", "__version__"}, (
        "a new public name: add it to API_SIGNATURES"
    )


def test_record_fields_are_frozen():
    fields = [f.name for f in runner.Record.__dataclass_fields__.values()]
    assert fields[:8] == [
        "id",
        "spec",
        "spec_path",
        "case_id",
        "variables",
        "matrix",
        "model",
        "status",
    ]
    assert runner.Record.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_validate_returns_problems_as_objects(project):
    write_spec(project, "good")
    bad = project / "specs" / "bad.yaml"
    bad.write_text("version: 1\nmodel: openai/gpt-oss-20b\ntemprature: 0\nmessages: []\n")

    result = runner.validate_specs(project / "specs")

    assert not result.ok
    assert [s.name for s in result.specs] == ["good"]
    problem = next(p for p in result.problems if "temprature" in p.message)
    assert (problem.path, problem.line, problem.column) == ("specs/bad.yaml", 3, 1)
    assert problem.hint and "temperature" in problem.hint


def test_load_raises_spec_error_with_every_problem(project):
    (project / "specs").mkdir()
    (project / "specs" / "bad.yaml").write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\nmessages: nope\n"
    )

    with pytest.raises(runner.SpecError) as caught:
        runner.load_specs("specs")

    assert caught.value.problems and all(
        isinstance(p, runner.Problem) for p in caught.value.problems
    )
    assert isinstance(caught.value, runner.RunnerError)


def test_render_with_variables_and_case_selection(project):
    spec = write_spec(
        project,
        "greet",
        "Hello {{ who }}",
        cases=[{"id": "a", "who": "Ada"}, {"id": "b", "who": "Bob"}],
    )

    requests = runner.render_spec(spec, cases=["b"])
    assert [r.id for r in requests] == ["greet/b"]
    assert requests[0].body["messages"][0]["content"] == "Hello Bob"

    overridden = runner.render_spec(str(spec), {"who": "Eve"}, limit=1)
    assert [r.body["messages"][0]["content"] for r in overridden] == ["Hello Eve"]


def test_render_errors_are_caught_first_by_validation(project):
    spec = write_spec(project, "greet", "Hello {{ who.name }}", vars={"who": {"name": "Ada"}})
    assert runner.render_spec(spec)[0].body["messages"][0]["content"] == "Hello Ada"

    with pytest.raises(runner.SpecError) as caught:
        runner.render_spec(spec, {"who": "a plain string"})
    assert caught.value.problems[0].path == "specs/greet.yaml"

    loaded = runner.load_specs(spec)[0]  # already validated: the template fails as it renders
    with pytest.raises(runner.RenderError) as failed:
        runner.render_spec(loaded, {"who": "a plain string"})
    assert failed.value.problem.path == "specs/greet.yaml"
    with_cases = write_spec(project, "cased", "Hi {{ who }}", cases=[{"id": "a", "who": "A"}])
    with pytest.raises(runner.UsageError):
        runner.render_spec(with_cases, cases=["no-such-case"])


def test_options_as_an_object_or_as_keywords(project):
    write_spec(project, "hello")
    options = runner.RunOptions(provider="offline", concurrency=2)

    plan = runner.plan_specs("specs", options=options)
    summary = runner.run_specs("specs", options=options, concurrency=1)

    assert plan.counts()["offline"] == 1
    assert summary.ok == 1
    manifest = runner.open_run(summary.run_dir).manifest
    assert manifest["settings"]["concurrency"] == 1
    with pytest.raises(TypeError):
        runner.run_specs("specs", provider="offline", no_such_option=1)
    with pytest.raises(runner.UsageError, match=r"'concurency' is not a run option.*'concurrency'"):
        runner.run_specs("specs", provider="offline", concurency=2)
    with pytest.raises(runner.UsageError, match="'provder' is not a run option"):
        runner.plan_specs("specs", provder="offline")


@pytest.mark.parametrize(
    "option,said",
    [
        ({"concurrency": 0}, "concurrency must be at least 1 and at most 512, not 0"),
        ({"retries": -1}, "retries must be at least 0 and at most 20, not -1"),
        ({"timeout": 0}, "timeout must be more than 0, not 0"),
        ({"cases": "a"}, "cases takes a list of case ids, not the string 'a'"),
    ],
)
def test_options_out_of_range_are_usage_errors(project, option, said):
    write_spec(project, "greet", "Hi {{ who }}", cases=[{"id": "a", "who": "A"}])
    with pytest.raises(runner.UsageError) as caught:
        runner.run_specs("specs", provider="offline", **option)
    assert str(caught.value) == said
    assert not (project / "runs").exists()


@pytest.mark.parametrize("selection", [{"limit": 0}, {"limit": -1}, {"sample": -2}])
def test_a_selection_below_one_is_a_usage_error(project, selection):
    spec = write_spec(project, "greet", "Hi {{ who }}", cases=[{"id": "a", "who": "A"}])
    name = next(iter(selection))
    with pytest.raises(runner.UsageError, match=f"{name} must be 1 or more"):
        runner.render_spec(spec, **selection)
    with pytest.raises(runner.UsageError, match=f"{name} must be 1 or more"):
        runner.run_specs("specs", provider="offline", **selection)


def test_run_offline_then_read_records_in_plan_order(project):
    write_spec(
        project,
        "sentiment",
        "Classify {{ text }} as JSON",
        response_format=SENTIMENT,
        cases=[{"id": f"c{i}", "text": f"review {i}"} for i in range(5)],
        matrix={"model": ["m-small", "m-large"]},
    )
    seen: list[str] = []

    summary = runner.run_specs(
        "specs", provider="offline", on_record=lambda r, d, t: seen.append(r["id"])
    )

    assert summary.total == 10 and summary.ok == 10 and summary.succeeded
    run = runner.open_run(summary.run_dir)
    assert run.status == "complete" and run.counts["ok"] == 10
    records = list(run.records())
    assert sorted(seen) == sorted(r.id for r in records)
    assert [r.case_id for r in records[:2]] == ["c0", "c0"]
    assert [r.model for r in records[:2]] == ["m-small", "m-large"]
    first = records[0]
    assert isinstance(first, runner.Record) and first.ok and first.offline
    assert first.variables["text"] == "review 0"
    assert first.matrix == {"model": "m-small"}
    assert first.parsed["label"] in ("positive", "negative")
    assert first.raw["id"] == first.id

    rows = list(run.rows())
    assert [row["id"] for row in rows] == [r.id for r in records]
    assert rows[0]["var.text"] == "review 0" and rows[0]["matrix.model"] == "m-small"
    assert rows[0]["json.label"] == first.parsed["label"] and rows[0]["status"] == "ok"
    assert list(runner.record_rows(records)) == rows


def test_run_against_the_server_with_tools_and_a_key(project, openai_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(
        project, "weather", "Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="required"
    )

    summary = runner.run_specs(
        "specs", base_url=openai_server.base_url, api_key_env=KEY_ENV, out="runs", cache="off"
    )

    assert summary.ok == 1 and openai_server.count == 1
    (record,) = runner.open_run(summary.run_dir)
    assert record.tool_calls and record.tool_calls[0].name == "get_weather"
    assert isinstance(record.tool_calls[0].arguments, dict) and record.tool_calls[0].valid
    assert record.usage and record.usage["total_tokens"] > 0
    assert record.latency_ms is not None and not record.cached


def test_run_without_the_key_raises_a_usage_error(project, openai_server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    write_spec(project, "hello")
    with pytest.raises(runner.UsageError):
        runner.run_specs("specs", base_url=openai_server.base_url, api_key_env=KEY_ENV)
    assert openai_server.count == 0


def test_diff_of_two_runs(project, openai_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "a")
    write_spec(project, "b")
    options = {"base_url": openai_server.base_url, "api_key_env": KEY_ENV, "cache": "off"}
    first = runner.run_specs("specs", **options)  # type: ignore[arg-type]
    openai_server.plan('reply:{"content": "Something else."}', marker="(b)")
    second = runner.run_specs("specs", **options)  # type: ignore[arg-type]

    result = runner.diff_runs(first.run_dir, second.run_dir)

    assert not result.identical
    assert [r.id for r in result.changed] == ["b"]
    assert runner.diff_runs(first.run_dir, first.run_dir).identical


def test_run_folders_are_named_as_the_cli_names_them(project):
    write_spec(project, "a", "Say hello (a).")
    first = runner.run_specs("specs", provider="offline")
    second = runner.run_specs("specs", provider="offline")
    assert runner.open_run("latest").path == second.run_dir
    assert runner.open_run("latest~1").path == first.run_dir
    assert runner.diff_runs("latest~1", "latest").identical
    with pytest.raises(runner.UsageError, match="closest"):
        runner.open_run(str(second.run_dir)[:-1])


def test_iter_diff_streams_one_item_per_id(project):
    """The streaming form of diff_runs: an iterator, one item per id, nothing gathered."""
    import types

    for name in ("a", "b", "c"):
        write_spec(project, name, f"Say hello ({name}).")
    first = runner.run_specs("specs", provider="offline")
    write_spec(project, "b", "Say goodbye (b).")
    (project / "specs" / "c.yaml").unlink()
    write_spec(project, "d", "Say hello (d).")
    second = runner.run_specs("specs", provider="offline")

    items = runner.iter_diff(first.run_dir, second.run_dir)

    assert isinstance(items, types.GeneratorType)
    seen = [(item.kind, item.id, item.diff.differs if item.diff else None) for item in items]
    assert seen == [
        ("paired", "a", False),
        ("paired", "b", True),
        ("missing", "c", None),
        ("added", "d", None),
    ]


def test_resume_sends_only_what_is_missing(project, openai_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "a")
    write_spec(project, "b")
    openai_server.plan("400", marker="(b)")
    options = {"base_url": openai_server.base_url, "api_key_env": KEY_ENV, "cache": "off"}
    first = runner.run_specs("specs", **options)  # type: ignore[arg-type]
    assert first.failed == 1

    again = runner.resume_run(first.run_dir)

    assert again.ok == 1 and openai_server.count == 3
    assert {r.status for r in runner.open_run(first.run_dir)} == {"ok"}


def test_verdicts_and_checks_are_typed(project):
    root = Path(runner.__file__).parent.parent
    for folder in ("specs", "schemas", "templates"):
        shutil.copytree(root / folder, project / folder, dirs_exist_ok=True)
    summary = runner.run_specs(project / "specs" / "polite-reply.yaml", provider="offline")
    records = list(runner.open_run(summary.run_dir))
    assert len(records) == 3
    for record in records:
        stored = record.raw["expectations"]["checks"]
        assert [c.kind for c in record.checks] == [c["check"] for c in stored] == ["judge"] * 2
        assert [c.passed for c in record.checks] == [c["passed"] for c in stored]
        assert len(record.verdicts) == 2
        for verdict, check in zip(record.verdicts, stored, strict=True):
            assert verdict.judge == "judges/polite.yaml"
            assert verdict.score == check["actual"]["score"]
            assert verdict.reason == check["actual"]["reason"]
            assert verdict.passed is check["passed"]
    assert records[0].passed is all(c.passed for c in records[0].checks)


def test_checks_of_a_hand_edited_record_are_read_not_raised():
    record = runner.Record.from_json(
        {
            "id": "x",
            "expectations": {
                "checks": [
                    "not a check",
                    {"check": "judge", "passed": "yes", "score": "high", "actual": [1]},
                    {"check": "regex", "passed": False, "message": 3},
                ]
            },
        }
    )
    assert [(c.kind, c.passed, c.score, c.message) for c in record.checks] == [
        ("judge", None, None, None),
        ("regex", False, None, None),
    ]
    assert [(v.score, v.reason) for v in record.verdicts] == [(None, None)]
    assert runner.Record.from_json({"id": "y", "expectations": {"checks": 5}}).checks == ()


def test_code_using_the_api_passes_mypy_strict(tmp_path):
    user_code = tmp_path / "analysis.py"
    user_code.write_text(
        textwrap.dedent(
            """
            import runner

            result = runner.validate_specs("specs")
            for problem in result.problems:
                print(problem.path, problem.line, problem.column, problem.message)
            summary = runner.run_specs("specs", provider="offline")
            run = runner.open_run(summary.run_dir)
            latencies: list[float] = [r.latency_ms or 0.0 for r in run.records()]
            models: set[str | None] = {r.model for r in run}
            scores: list[float] = [v.score or 0.0 for r in run for v in r.verdicts]
            failed: list[str] = [c.kind for r in run for c in r.checks if c.passed is False]
            try:
                runner.load_specs("missing.yaml")
            except runner.SpecError as exc:
                print(len(exc.problems))
            """
        )
    )
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--no-incremental",
            str(user_code),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(Path(runner.__file__).parent.parent)},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_documented_example_runs_as_written(project, capsys):
    page = (Path(runner.__file__).parent.parent / "docs" / "api.md").read_text()
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    root = Path(runner.__file__).parent.parent
    for folder in ("specs", "schemas", "templates"):
        shutil.copytree(root / folder, project / folder)

    exec(compile(example, "docs/api.md", "exec"), {})

    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "True"  # two offline runs of the same specs are identical
    assert any(" ok, saved in runs/" in line or " ok, saved in runs" in line for line in printed)
    assert len(list((project / "runs").iterdir())) == 2
