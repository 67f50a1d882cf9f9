"""Expectations (runner/expect.py): every kind passes and fails against real runs, validation
points at the place, runner diff shows PASS -> FAIL, and --fail-on-expect sets the exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import (
    KEY,
    KEY_ENV,
    SENTIMENT,
    WEATHER_TOOL,
    latest_run,
    read_records,
    run_args,
    without_codes,
)

from runner.spec.expectations import JUDGE_KIND, KINDS


def spec_file(project: Path, name: str, expect: list[dict[str, Any]], **fields: Any) -> Path:
    """specs/NAME.yaml whose message carries the marker (NAME), so the server can aim at it."""
    spec = {
        "version": 1,
        "name": name,
        "model": "openai/gpt-oss-120b",
        "messages": [{"role": "user", "content": f"Answer ({name})."}],
        "expect": expect,
        **fields,
    }
    path = project / "specs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def reply(content: Any = None, **message: Any) -> str:
    """The test server fault that answers with this assistant message."""
    if content is not None:
        message["content"] = content if isinstance(content, str) else json.dumps(content)
    return "reply:" + json.dumps(message)


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "id": "call_1",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


SENTIMENT_FIELDS = {"response_format": SENTIMENT, "vars": {"expected_label": "positive"}}
WEATHER_FIELDS = {"tools": [WEATHER_TOOL], "vars": {"city": "Paris"}}

# kind -> (spec fields, check that passes, its answer, check that fails, its answer)
KIND_CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str, dict[str, Any], str]] = {
    "equals": (
        SENTIMENT_FIELDS,
        {"equals": "{{ expected_label }}", "path": "label"},
        reply({"label": "positive", "score": 0.9}),
        {"equals": "{{ expected_label }}", "path": "label"},
        reply({"label": "negative", "score": 0.9}),
    ),
    "one_of": (
        {},
        {"one_of": ["billing", "docs"], "ignore_case": True},
        reply("Billing\n"),
        {"one_of": ["billing", "docs"]},
        reply("platform"),
    ),
    "contains": (
        {},
        {"contains": "refund"},
        reply("We will refund you today."),
        {"contains": "refund"},
        reply("No money back."),
    ),
    "regex": (
        {},
        {"regex": r"^T-\d+$"},
        reply("T-42"),
        {"regex": r"^T-\d+$"},
        reply("ticket 42"),
    ),
    "tool_call": (
        WEATHER_FIELDS,
        {"tool_call": "get_weather", "arguments": {"city": "{{ city }}"}},
        reply(tool_calls=[call("get_weather", city="Paris", unit="c")]),
        {"tool_call": "get_weather", "arguments": {"city": "{{ city }}"}},
        reply(tool_calls=[call("get_weather", city="Lyon")]),
    ),
    "max_latency_ms": (
        {},
        {"max_latency_ms": 60_000},
        reply("hi"),
        {"max_latency_ms": 0},
        reply("hi"),
    ),
    "max_tokens": ({}, {"max_tokens": 100_000}, reply("hi"), {"max_tokens": 0}, reply("hi")),
    "max_total_tokens": (
        {},
        {"max_total_tokens": 100_000},
        reply("hi"),
        {"max_total_tokens": 1},
        reply("hi"),
    ),
}


@pytest.fixture
def run_server(run_cli, openai_server, project, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)

    def run(*extra: str):
        result = run_cli(*run_args(openai_server.base_url), "--no-cache", *extra)
        return result, read_records(latest_run(project))

    return run


def test_every_kind_has_a_passing_and_a_failing_case(project, openai_server, run_server):
    # A judge is a spec of its own, with its own tests: tests/test_judges.py.
    assert set(KIND_CASES) == set(KINDS) - {JUDGE_KIND}
    for kind, (fields, good, good_answer, bad, bad_answer) in KIND_CASES.items():
        spec_file(project, f"{kind}-pass", [good], **fields)
        spec_file(project, f"{kind}-fail", [bad], **fields)
        openai_server.plan(good_answer, marker=f"({kind}-pass)")
        openai_server.plan(bad_answer, marker=f"({kind}-fail)")

    result, records = run_server("--json")

    assert result.exit_code == 0, result.output  # failed expectations keep exit 0
    for kind in KIND_CASES:
        for verdict in ("pass", "fail"):
            record = records[f"{kind}-{verdict}"]
            assert record["status"] == "ok", record
            results = record["expectations"]
            (check,) = results["checks"]
            assert check["check"] == kind
            assert check["passed"] is (verdict == "pass"), (kind, check)
            assert results == {
                "passed": verdict == "pass",
                "total": 1,
                "failed": int(verdict == "fail"),
                "checks": [check],
            }
    summary = json.loads(result.stdout)
    assert summary["expectations"] == {"records": 16, "passed": 8, "failed": 8}
    manifest = json.loads((latest_run(project) / "manifest.json").read_text())
    assert manifest["counts"]["expectations"] == {"records": 16, "passed": 8, "failed": 8}


def test_results_say_what_was_expected_and_what_came(project, openai_server, run_server):
    spec_file(
        project,
        "weather",
        [
            {"tool_call": "get_weather", "arguments": {"city": "{{ city }}"}},
            {"max_tokens": 100_000},
        ],
        **WEATHER_FIELDS,
    )
    spec_file(
        project,
        "label",
        [{"equals": "{{ expected_label }}", "path": "label"}, {"contains": "pos"}],
        **SENTIMENT_FIELDS,
    )
    openai_server.plan(reply(tool_calls=[call("get_weather", city="Lyon")]), marker="(weather)")
    openai_server.plan(reply({"label": "negative", "score": 0.2}), marker="(label)")

    _, records = run_server()

    tool, tokens = records["weather"]["expectations"]["checks"]
    assert tool == {
        "check": "tool_call",
        "target": "get_weather",
        "expected": {"name": "get_weather", "arguments": {"city": "Paris"}},
        "actual": [{"name": "get_weather", "arguments": {"city": "Lyon"}}],
        "passed": False,
        "message": '\'get_weather\' was called, but not with {"city": "Paris"}',
    }
    assert tokens["target"] == "completion_tokens" and tokens["passed"] is True
    assert records["weather"]["expectations"]["failed"] == 1
    label, text = records["label"]["expectations"]["checks"]
    assert (label["target"], label["expected"], label["actual"]) == (
        "label",
        "positive",
        "negative",
    )
    assert label["message"] == '\'label\' is "negative", not "positive"'
    assert text["target"] == "text" and text["passed"] is False


def test_a_failed_request_fails_its_checks(project, openai_server, run_server):
    spec_file(project, "down", [{"contains": "x"}, {"max_latency_ms": 60_000}])
    openai_server.plan("400", marker="(down)")

    result, records = run_server()

    assert result.exit_code == 1
    checks = records["down"]["expectations"]["checks"]
    assert [c["passed"] for c in checks] == [False, False]
    assert checks[0]["message"] == "no answer to check (the request failed)"


def test_a_spec_without_checks_saves_null(project, openai_server, run_server):
    spec_file(project, "plain", [])
    path = project / "specs" / "plain.yaml"
    data = yaml.safe_load(path.read_text())
    del data["expect"]
    path.write_text(yaml.safe_dump(data))

    _, records = run_server()

    assert records["plain"]["expectations"] is None


# ---- the offline provider, cases from a data file


def test_expected_values_come_from_a_data_file_on_the_offline_provider(project, run_cli):
    (project / "specs" / "data").mkdir(parents=True)
    # Same review twice: the offline answer is the same, so exactly one expected label is right.
    (project / "specs" / "data" / "reviews.csv").write_text(
        "id,review,expected_label\nsays-pos,Great.,positive\nsays-neg,Great.,negative\n"
    )
    spec_file(
        project,
        "reviews",
        [
            {"equals": "{{ expected_label }}", "path": "label"},
            {"one_of": ["positive", "negative"], "path": "label"},
            {"max_tokens": 0},
        ],
        response_format=SENTIMENT,
        cases="data/reviews.csv",
    )

    result = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--json")

    assert result.exit_code == 0, result.output
    records = read_records(latest_run(project))
    pos, neg = records["reviews/says-pos"], records["reviews/says-neg"]
    label = pos["output"]["parsed"]["label"]
    assert neg["output"]["parsed"]["label"] == label
    right, wrong = (pos, neg) if label == "positive" else (neg, pos)
    assert [c["passed"] for c in right["expectations"]["checks"]] == [True, True, False]
    assert [c["passed"] for c in wrong["expectations"]["checks"]] == [False, True, False]
    assert json.loads(result.stdout)["expectations"] == {"records": 2, "passed": 0, "failed": 2}


# ---- the exit code for CI


def test_fail_on_expect_makes_a_failed_check_exit_1(project, run_cli):
    spec_file(project, "short", [{"max_tokens": 0}])
    args = ("run", "specs", "--provider", "offline", "--out", "runs")

    assert run_cli(*args).exit_code == 0
    failing = run_cli(*args, "--fail-on-expect")
    assert failing.exit_code == 1
    assert "expectations: 0 of 1 record passed (0%), 1 failed" in failing.stderr

    spec_file(project, "short", [{"max_tokens": 100_000}])
    assert run_cli(*args, "--fail-on-expect").exit_code == 0


# ---- validation at file:line:column

VALID = """\
version: 1
name: v
model: openai/gpt-oss-20b
response_format:
  type: json_schema
  json_schema:
    name: x
    strict: true
    schema:
      type: object
      properties:
        label: {type: string}
        items:
          type: array
          items:
            type: object
            properties: {name: {type: string}}
            required: [name]
            additionalProperties: false
      required: [label, items]
      additionalProperties: false
tools:
  - type: function
    function: {name: lookup, parameters: {type: object, properties: {query: {type: string}}}}
vars:
  expected: a
messages:
  - role: user
    content: Classify.
expect:
  - equals: "{{ expected }}"
    path: label
"""

EXPECT_MISTAKES = {
    "unknown check": (
        "  - equals:",
        "  - equal:",
        "spec.yaml:31:5: unknown key 'equal' in 'expect[0]' (did you mean 'equals'? "
        'write: equals: "{{ expected }}")',
    ),
    "field not in the response schema": (
        "    path: label",
        "    path: lable",
        "spec.yaml:32:11: the response schema has no field 'lable' (fields here: label, items)",
    ),
    "nested field not in the response schema": (
        "    path: label",
        "    path: items[0].nme",
        "spec.yaml:32:11: the response schema has no field 'nme' in 'items[0]' (fields here: name)",
    ),
    "variable with no value": (
        '"{{ expected }}"',
        '"{{ expectd }}"',
        "spec.yaml:31:13: template uses the variable 'expectd', which has no value "
        "(did you mean 'expected', a variable the spec has? write {{ expected }})",
    ),
    "tool not defined": (
        '  - equals: "{{ expected }}"\n    path: label\n',
        "  - tool_call: search\n",
        "spec.yaml:31:16: tool_call expects the tool 'search', which the spec does not define "
        "(defined tools: lookup)",
    ),
    "argument the tool does not take": (
        '  - equals: "{{ expected }}"\n    path: label\n',
        "  - tool_call: lookup\n    arguments: {qery: '{{ expected }}'}\n",
        "spec.yaml:32:17: the tool 'lookup' has no argument 'qery' (its arguments: query)",
    ),
    "bad regex": (
        '  - equals: "{{ expected }}"\n    path: label\n',
        "  - regex: '[a-'\n",
        "spec.yaml:31:12: regex '[a-' is not a valid regular expression: unterminated "
        "character set at position 3 (Python's re syntax; quote the pattern with single "
        "quotes in YAML)",
    ),
    "two kinds in one check": (
        "    path: label",
        "    path: label\n    max_tokens: 5",
        "spec.yaml:31:5: expect[0] names 'equals' and 'max_tokens'; a check names exactly one "
        "kind (one of: equals, one_of, contains, regex, tool_call, max_latency_ms, max_tokens, "
        "max_total_tokens, judge)",
    ),
    "path that is not a path": (
        "    path: label",
        "    path: items[x]",
        "spec.yaml:32:11: 'items[x]' is not a path like label, items[0].name or scores.overall "
        "(fields are joined by '.', list items are [0])",
    ),
    "path on a ceiling": (
        '  - equals: "{{ expected }}"\n',
        "  - max_latency_ms: 100\n",
        "spec.yaml:32:11: 'path' does not go with 'max_latency_ms' (a path reads a field of "
        "the JSON answer, for equals, one_of, contains and regex)",
    ),
}


def test_the_valid_example_is_valid(project, run_cli):
    (project / "spec.yaml").write_text(VALID)
    result = run_cli("validate", "spec.yaml")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", EXPECT_MISTAKES)
def test_expectation_mistakes_are_reported_at_their_place(project, run_cli, name):
    old, new, expected = EXPECT_MISTAKES[name]
    assert old in VALID
    (project / "spec.yaml").write_text(VALID.replace(old, new, 1))

    result = run_cli("validate", "spec.yaml")

    assert result.exit_code == 1
    assert without_codes(result.stdout).splitlines() == [expected]


def test_a_data_file_row_without_the_expected_column_is_reported(project, run_cli):
    (project / "specs" / "data").mkdir(parents=True)
    (project / "specs" / "data" / "rows.csv").write_text("id,text\na,hello\n")
    spec_file(project, "rows", [{"equals": "{{ expected_label }}"}], cases="data/rows.csv")

    result = run_cli("validate", "specs")

    assert result.exit_code == 1
    assert "specs/data/rows.csv:2: " in result.stdout
    assert "expected_label" in result.stdout


# ---- runner diff


def test_diff_shows_a_check_that_turned_from_pass_to_fail(project, run_cli):
    spec_file(project, "short", [{"max_tokens": 100_000}, {"contains": ""}])
    args = ("run", "specs", "--provider", "offline", "--quiet", "--out")
    run_cli(*args, "before")
    spec_file(project, "short", [{"max_tokens": 0}, {"contains": ""}])
    run_cli(*args, "after")
    (before,), (after,) = (list((project / d).iterdir()) for d in ("before", "after"))

    result = run_cli("diff", before, after)

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("changed short  (") for line in lines)  # with its model
    assert "  expectations: PASS -> FAIL" in lines
    assert any(
        line.startswith("    max_tokens completion_tokens: PASS -> FAIL (completion_tokens ")
        for line in lines
    )
    assert lines[-1] == "expectations: 1 turned PASS -> FAIL, 0 FAIL -> PASS"
    data = json.loads(run_cli("diff", before, after, "--json").stdout)
    assert data["expectations"] == {"pass_to_fail": 1, "fail_to_pass": 0}


# ---- runner score: the saved answers scored again, nothing sent

LABELS_CSV = "id,review,expected_label\nr1,Great strap.,{0}\nr2,Broke in a week.,{0}\n"


def labelled_project(project: Path, expected: str) -> Path:
    data = project / "specs" / "data" / "labels.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(LABELS_CSV.format(expected))
    return spec_file(
        project,
        "labels",
        [{"equals": "{{ expected_label }}", "path": "label"}],
        response_format=SENTIMENT,
        cases="data/labels.csv",
    )


def test_score_rescores_saved_answers_and_sends_nothing(
    project, openai_server, run_server, run_cli, monkeypatch
):
    labelled_project(project, "negative")  # the wrong label, fixed below
    openai_server.plan(*[reply({"label": "positive", "score": 0.8})] * 2, marker="(labels)")
    ran, _ = run_server()
    assert ran.exit_code == 0, ran.output
    run_dir = latest_run(project)
    assert json.loads((run_dir / "manifest.json").read_text())["counts"]["expectations"] == {
        "records": 2,
        "passed": 0,
        "failed": 2,
    }
    sent = openai_server.count
    monkeypatch.delenv(KEY_ENV)  # scoring needs no key: it never reaches a provider

    labelled_project(project, "positive")
    scored = run_cli("score", run_dir)

    assert scored.exit_code == 0, scored.output
    assert openai_server.count == sent == 2
    assert scored.stderr.splitlines()[:3] == [
        f"scored 2 records of {run_dir} again (nothing sent)",
        "expectations: 2 of 2 records passed (100%), 0 failed",
        "changed: 0 now fail, 2 now pass",
    ]
    records = read_records(run_dir)
    for record in records.values():
        assert record["expectations"]["passed"] is True
        assert record["expectations"]["checks"][0]["expected"] == "positive"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["counts"]["expectations"] == {"records": 2, "passed": 2, "failed": 0}
    assert manifest["scored"]["prompt_changed"] == 0
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["labels/r1", "labels/r2"]
    assert all(json.loads(line)["expectations"]["passed"] for line in lines)


def test_score_warns_when_the_prompt_changed_since_the_run(project, run_cli):
    path = labelled_project(project, "positive")
    run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--quiet")
    path.write_text(path.read_text().replace("Answer (labels).", "Answer briefly (labels)."))

    result = run_cli("score", latest_run(project), "--json")

    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["prompt_changed"] == ["labels/r1", "labels/r2"]
    text = run_cli("score", latest_run(project)).stderr
    assert "warning: 2 records were answered to a different request" in text


def test_score_with_another_spec_file_and_the_exit_code_flag(project, run_cli):
    spec_file(project, "short", [{"max_tokens": 100_000}])
    run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--quiet")
    strict = spec_file(project / "elsewhere", "short", [{"max_tokens": 0}])

    assert run_cli("score", latest_run(project), "--spec", strict).exit_code == 0
    failing = run_cli("score", latest_run(project), "--spec", strict, "--fail-on-expect")
    assert failing.exit_code == 1
    assert "changed: 0 now fail" in failing.stderr  # the first score had already failed it
    assert run_cli("score", latest_run(project), "--fail-on-expect").exit_code == 0

    other = spec_file(project / "elsewhere", "other", [{"max_tokens": 0}])
    refused = run_cli("score", latest_run(project), "--spec", other)
    assert refused.exit_code == 2
    assert "the run has no spec named other" in refused.stderr


# ---- the example experiment in specs/


def test_the_example_experiment_scores_on_the_offline_provider(run_cli, tmp_path):
    spec = Path(__file__).parent.parent / "specs" / "ticket-triage.yaml"
    result = run_cli("run", spec, "--provider", "offline", "--out", tmp_path, "--json")

    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    records = read_records(run_dir)
    assert len(records) == 12  # 6 labelled tickets x 2 models
    assert {r["matrix"]["model"] for r in records.values()} == {
        "openai/gpt-oss-20b",
        "openai/gpt-oss-120b",
    }
    for record in records.values():
        team, summary, tokens = record["expectations"]["checks"]
        assert team["expected"] == record["vars"]["expected_team"]
        assert team["actual"] == record["output"]["parsed"]["team"]
        assert team["passed"] is (team["expected"] == team["actual"])
        assert summary["passed"] and tokens["passed"]
        # The pattern as the spec writes it ('\S'), not JSON-quoted with its backslash doubled.
        assert summary["message"] == "'summary' matches /\\S/"
    passed = sum(r["expectations"]["passed"] for r in records.values())
    assert json.loads(result.stdout)["expectations"] == {
        "records": 12,
        "passed": passed,
        "failed": 12 - passed,
    }


# ---- an inline case's own checks

CASES_SPEC = """\
version: 1
name: cases
model: openai/gpt-oss-20b
expect:
  - max_total_tokens: 100000
cases:
  - id: short
    q: hi
    expect:
      - max_tokens: 0
  - id: plain
    q: yo
messages:
  - role: user
    content: "{{ q }}"
"""


def test_an_inline_case_adds_its_own_checks(project, run_cli):
    (project / "specs").mkdir()
    (project / "specs" / "cases.yaml").write_text(CASES_SPEC)

    result = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--json")

    assert result.exit_code == 0, result.output
    records = read_records(latest_run(project))
    short, plain = records["cases/short"], records["cases/plain"]
    assert [c["check"] for c in short["expectations"]["checks"]] == [
        "max_total_tokens",
        "max_tokens",
    ]
    assert short["expectations"]["passed"] is False
    assert "expect" not in short["vars"]  # checks are not template variables
    assert [c["check"] for c in plain["expectations"]["checks"]] == ["max_total_tokens"]
    assert plain["expectations"]["passed"] is True
    assert json.loads(result.stdout)["expectations"] == {"records": 2, "passed": 1, "failed": 1}

    # Fixing a case's check keeps its id, so runner score finds it again.
    path = project / "specs" / "cases.yaml"
    path.write_text(CASES_SPEC.replace("max_tokens: 0", "max_tokens: 100000"))
    scored = json.loads(run_cli("score", latest_run(project), "--json").stdout)
    assert scored["expectations"] == {"records": 2, "passed": 2, "failed": 0}
    assert scored["not_in_spec"] == [] and scored["prompt_changed"] == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "- max_tokens: 0",
            "- max_token: 0",
            "spec.yaml:10:9: unknown key 'max_token' in 'cases[0].expect[0]' "
            "(did you mean 'max_tokens'? write: max_tokens: 0)",
        ),
        (
            "- max_tokens: 0",
            "- equals: '{{ answer }}'",
            "spec.yaml:10:17: template uses the variable 'answer', which has no value "
            "(give it a value in this case or under 'vars:')",
        ),
        (
            "- max_tokens: 0",
            "- max_tokens: 0\n        path: label",
            "spec.yaml:11:15: 'path' does not go with 'max_tokens' (a path reads a field of "
            "the JSON answer, for equals, one_of, contains and regex)",
        ),
    ],
)
def test_an_inline_case_check_is_validated_at_its_place(project, run_cli, old, new, expected):
    (project / "spec.yaml").write_text(CASES_SPEC.replace(old, new))

    result = run_cli("validate", "spec.yaml")

    assert result.exit_code == 1
    assert without_codes(result.stdout).splitlines() == [expected]


def test_an_expected_value_the_schema_never_allows_is_reported(project, run_cli):
    labelled_project(project, "positive")
    data = project / "specs" / "data" / "labels.csv"
    data.write_text("id,review,expected_label\nr1,Great.,positive\nr2,Bad.,negativ\n")
    path = project / "specs" / "labels.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["expect"].append({"one_of": ["positive", "neutral"], "path": "label"})
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    line = path.read_text().splitlines().index("  - neutral") + 1

    result = run_cli("validate", "specs")

    assert result.exit_code == 1
    assert without_codes(result.stdout).splitlines() == [
        'specs/data/labels.csv:3: row 3: the expected value "negativ" is not one the response '
        'schema allows for \'label\' ("positive", "negative") (fix the expected value in the '
        "case, or the response schema)",
        f'specs/labels.yaml:{line}:5: the expected value "neutral" is not one the response '
        'schema allows for \'label\' ("positive", "negative")',
    ]


def test_a_resumed_run_counts_the_expectations_of_all_its_records(
    project, openai_server, run_server, run_cli
):
    spec_file(project, "first", [{"contains": "yes"}])
    spec_file(project, "second", [{"contains": "yes"}])
    openai_server.plan(reply("yes"), marker="(first)")
    openai_server.plan("400", reply("no"), marker="(second)")
    failed, _ = run_server()
    assert failed.exit_code == 1

    resumed = run_cli("run", "--resume", latest_run(project), "--json")

    assert json.loads(resumed.stdout)["expectations"] == {"records": 2, "passed": 1, "failed": 1}
    manifest = json.loads((latest_run(project) / "manifest.json").read_text())
    assert manifest["counts"]["expectations"] == {"records": 2, "passed": 1, "failed": 1}


def test_score_finds_each_record_when_the_cases_were_reordered_or_removed(project, run_cli):
    labelled_project(project, "negative")
    run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--quiet")
    run_dir = latest_run(project)
    labels = {r["id"]: r["output"]["parsed"]["label"] for r in read_records(run_dir).values()}
    data = project / "specs" / "data" / "labels.csv"
    rows = [("r3", "New.", "positive"), ("r2", "Broke in a week.", labels["labels/r2"])]
    rows.append(("r1", "Great strap.", labels["labels/r1"]))
    data.write_text("id,review,expected_label\n" + "".join(f"{','.join(r)}\n" for r in rows))

    reordered = json.loads(run_cli("score", run_dir, "--json").stdout)

    assert reordered["expectations"] == {"records": 2, "passed": 2, "failed": 0}
    assert reordered["not_in_spec"] == [] and reordered["prompt_changed"] == []

    data.write_text("id,review,expected_label\n" + f"{','.join(rows[1])}\n")
    removed = json.loads(run_cli("score", run_dir, "--json").stdout)
    assert removed["not_in_spec"] == ["labels/r1"]
    assert removed["expectations"]["records"] == 2  # scored with its saved variables
