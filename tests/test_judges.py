"""Judges (``expect: - judge: PATH``) and chained runs (``cases: {run: RUN_DIR}``).

Runs go to the offline provider or to the local OpenAI-compatible server (which answers with
the offline provider's answers, verdicts included), never to the internet.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import KEY, KEY_ENV, read_records

from runner.send.offline_verdict import REASON
from runner.spec.chain import runs_in

VERDICT = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pass", "score", "reason"],
            "properties": {
                "pass": {"type": "boolean"},
                "score": {"type": "integer", "minimum": 1, "maximum": 5},
                "reason": {"type": "string"},
            },
        },
    },
}

CASES = [
    {"id": "double-charge", "ticket": "I was charged twice."},
    {"id": "slow", "ticket": "Listing my bucket is slow."},
    {"id": "dns", "ticket": "The new CNAME does not resolve."},
]


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_judge(project: Path, name: str = "polite", **fields: Any) -> Path:
    judge = {
        "version": 1,
        "name": name,
        "model": "openai/gpt-oss-120b",
        "response_format": VERDICT,
        "messages": [
            {"role": "system", "content": "Grade the reply for politeness (judge marker)."},
            {"role": "user", "content": "Ticket: {{ ticket }}\nReply: {{ answer }}"},
        ],
        **fields,
    }
    judge = {key: value for key, value in judge.items() if value is not None}
    return write_yaml(project / "specs" / "judges" / f"{name}.yaml", judge)


def write_reply(project: Path, expect: list[Any] | None = None, **fields: Any) -> Path:
    spec = {
        "version": 1,
        "name": "reply",
        "model": "openai/gpt-oss-20b",
        "cases": CASES,
        "messages": [{"role": "user", "content": "{{ ticket }}"}],
        "expect": expect or [{"judge": "judges/polite.yaml"}],
        **fields,
    }
    return write_yaml(project / "specs" / "reply.yaml", spec)


def only_run(project: Path) -> Path:
    """The newest run (two runs may start within one second: their ids alone do not tell)."""
    return runs_in(project / "runs")[-1]


def judge_results(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in record["expectations"]["checks"] if c["check"] == "judge"]


def offline_run(run_cli, *args: str) -> dict[str, Any]:
    result = run_cli("run", *args, "--provider", "offline", "--out", "runs", "--json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


# ---- the offline provider


def test_three_cases_and_a_judge_save_three_verdicts_offline(project, run_cli):
    write_judge(project)
    write_reply(project)
    summary = offline_run(run_cli, "specs/reply.yaml")
    records = read_records(only_run(project))
    assert len(records) == 3
    for record in records.values():
        (result,) = judge_results(record)
        assert result["target"] == "judges/polite.yaml"
        assert isinstance(result["actual"]["pass"], bool)
        assert result["passed"] is result["actual"]["pass"]
        assert result["message"] == REASON
        assert 1 <= result["score"] <= 5
        (judged,) = record["judges"]
        assert judged["id"] == f"{record['id']}#judge=polite"
        assert judged["offline"] is True
        # The judge was asked with the answer under test and the case's ticket.
        asked = judged["request"]["messages"][-1]["content"]
        assert record["output"]["content"] in asked
        assert record["vars"]["ticket"] in asked
    verdicts = summary["judges"]["rates"]
    assert [(r["judge"], r["verdicts"]) for r in verdicts] == [("judges/polite.yaml", 3)]


def test_offline_verdicts_are_deterministic_and_follow_the_answer(project, run_cli):
    write_judge(project)
    write_reply(project)
    offline_run(run_cli, "specs/reply.yaml")
    first = read_records(only_run(project))
    shutil.rmtree(project / "runs")
    offline_run(run_cli, "specs/reply.yaml")
    second = read_records(only_run(project))
    assert [judge_results(r) for r in first.values()] == [judge_results(r) for r in second.values()]


def test_a_threshold_on_the_score_decides_with_pass_if_score(project, run_cli):
    write_judge(project)
    write_reply(
        project,
        [
            {"judge": "judges/polite.yaml", "pass_if": "score", "threshold": 1},
            {"judge": "judges/polite.yaml", "pass_if": "score", "threshold": 6},
        ],
    )
    offline_run(run_cli, "specs/reply.yaml")
    for record in read_records(only_run(project)).values():
        low, high = judge_results(record)
        assert low["passed"] is True and high["passed"] is False
        assert low["expected"] == {"score": ">= 1"}
        # The two checks send the same request: it is asked once.
        assert len(record["judges"]) == 1
        assert record["judges"][0]["checks"] == [0, 1]


def test_a_failed_answer_is_not_judged(project, run_cli):
    write_judge(project)
    write_reply(project, messages=[{"role": "user", "content": "{{ ticket | missing_filter }}"}])
    result = run_cli("validate", "specs/reply.yaml")
    assert result.exit_code == 1  # the filter is unknown: validate says so before any run


def test_streamed_runs_are_judged(project, run_cli):
    write_judge(project)
    write_reply(project)
    offline_run(run_cli, "specs/reply.yaml", "--stream")
    for record in read_records(only_run(project)).values():
        assert record["stream"] is not None
        (result,) = judge_results(record)
        assert isinstance(result["actual"]["pass"], bool)


# ---- the cache, limits and resume: against the local server


@pytest.fixture
def server_run(run_cli, openai_server, project, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)

    def run(*args: str) -> Any:
        return run_cli(
            "run",
            *args,
            "--base-url",
            openai_server.base_url,
            "--api-key-env",
            KEY_ENV,
            "--out",
            "runs",
            "--retries",
            "0",
            "--json",
        )

    return run


def test_a_second_run_sends_nothing_every_answer_and_verdict_from_the_cache(
    project, openai_server, server_run
):
    write_judge(project)
    write_reply(project)
    first = server_run("specs/reply.yaml")
    assert first.exit_code == 0, first.output
    assert openai_server.count == 6  # three answers, three verdicts
    first_records = read_records(only_run(project))
    second = server_run("specs/reply.yaml")
    assert second.exit_code == 0, second.output
    assert openai_server.count == 6
    second_records = read_records(only_run(project))
    for record_id, record in second_records.items():
        assert record["cached"] is True
        assert [j["cached"] for j in record["judges"]] == [True]
        assert judge_results(record) == judge_results(first_records[record_id])
    summary = json.loads(second.stdout)["judges"]
    assert (summary["requests"], summary["cached"]) == (3, 3)


def test_a_judge_may_name_another_provider(project, openai_server, run_cli, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_judge(project, provider="offline")
    provider = {"base_url": openai_server.base_url, "api_key_env": KEY_ENV}
    write_reply(project, provider=provider)
    (project / "runner.yaml").write_text(
        f"version: 1\nendpoints: [{{base_url: '{openai_server.base_url}', "
        f"api_key_env: {KEY_ENV}}}]\n"
    )
    assert run_cli("trust").exit_code == 0
    result = run_cli("run", "specs/reply.yaml", "--out", "runs")
    assert result.exit_code == 0, result.output
    assert openai_server.count == 3  # the answers; the judge answered offline
    for record in read_records(only_run(project)).values():
        assert record["offline"] is False
        assert record["judges"][0]["offline"] is True


def test_a_judge_that_fails_leaves_the_record_for_resume_which_asks_only_the_judge(
    project, openai_server, server_run, run_cli
):
    write_judge(project)
    write_reply(project)
    openai_server.plan("500", "500", "500", marker="judge marker")
    first = server_run("specs/reply.yaml")
    assert first.exit_code == 1
    run_dir = only_run(project)
    records = read_records(run_dir)
    for record in records.values():
        assert record["status"] == "failed"
        assert record["error"]["kind"] == "judge"
        assert "the judge specs/judges/polite.yaml failed" in record["error"]["message"]
        assert record["output"] is not None  # the answer is kept
    assert openai_server.count == 6
    resumed = run_cli("run", "--resume", str(run_dir))
    assert resumed.exit_code == 0, resumed.output
    assert openai_server.count == 9  # only the three judges: the answers came from the cache
    for record in read_records(run_dir).values():
        assert record["status"] == "ok"
        assert isinstance(judge_results(record)[0]["actual"]["pass"], bool)


def test_a_resume_without_the_cache_asks_only_the_judges_too(
    project, openai_server, server_run, run_cli
):
    write_judge(project)
    write_reply(project)
    openai_server.plan("500", "500", "500", marker="judge marker")
    first = server_run("specs/reply.yaml", "--no-cache")
    assert first.exit_code == 1
    assert openai_server.count == 6
    run_dir = only_run(project)
    answers = {i: r["output"]["content"] for i, r in read_records(run_dir).items()}
    resumed = run_cli("run", "--resume", str(run_dir))
    assert resumed.exit_code == 0, resumed.output
    assert openai_server.count == 9  # the answers came from the run's own records
    for record_id, record in read_records(run_dir).items():
        assert record["status"] == "ok"
        assert record["output"]["content"] == answers[record_id]
        assert isinstance(judge_results(record)[0]["actual"]["pass"], bool)


# ---- runner score


def test_score_regrades_with_judges_sending_only_what_changed(
    project, openai_server, server_run, run_cli
):
    judge = write_judge(project)
    write_reply(project)
    assert server_run("specs/reply.yaml").exit_code == 0
    run_dir = only_run(project)
    assert openai_server.count == 6
    scored = run_cli("score", str(run_dir), "--json")
    assert scored.exit_code == 0, scored.output
    assert openai_server.count == 6  # nothing changed: every verdict from the cache
    text = judge.read_text().replace("politeness", "courtesy")
    judge.write_text(text)
    scored = run_cli("score", str(run_dir), "--json")
    assert scored.exit_code == 0, scored.output
    assert openai_server.count == 9  # the changed judge is asked again, once per record
    for record in read_records(run_dir).values():
        assert "courtesy" in json.dumps(record["judges"][0]["request"])


def test_score_applies_a_new_threshold_without_sending(project, run_cli):
    write_judge(project)
    spec = write_reply(project, [{"judge": "judges/polite.yaml", "threshold": 1}])
    offline_run(run_cli, "specs/reply.yaml")
    run_dir = only_run(project)
    assert all(judge_results(r)[0]["passed"] for r in read_records(run_dir).values())
    spec.write_text(spec.read_text().replace("threshold: 1", "threshold: 6"))
    scored = run_cli("score", str(run_dir), "--json")
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["turned_failed"] == 3
    assert not any(judge_results(r)[0]["passed"] for r in read_records(run_dir).values())


# ---- diff and report


def test_diff_shows_verdicts_that_turned_pass_to_fail(project, run_cli):
    write_judge(project)
    spec = write_reply(project, [{"judge": "judges/polite.yaml", "threshold": 1}])
    offline_run(run_cli, "specs/reply.yaml")
    before = only_run(project)
    spec.write_text(spec.read_text().replace("threshold: 1", "threshold: 6"))
    offline_run(run_cli, "specs/reply.yaml")
    after = only_run(project)
    result = run_cli("diff", str(before), str(after))
    assert "judge judges/polite.yaml: PASS -> FAIL" in result.output
    assert "judge verdicts: 3 turned PASS -> FAIL, 0 FAIL -> PASS" in result.output


# ---- chained runs


def test_cases_from_a_run_make_one_record_per_earlier_record(project, run_cli):
    write_judge(project)
    write_reply(project)
    offline_run(run_cli, "specs/reply.yaml")
    earlier = read_records(only_run(project))
    write_yaml(
        project / "specs" / "summary.yaml",
        {
            "version": 1,
            "name": "summary",
            "model": "openai/gpt-oss-20b",
            "cases": {"run": "../runs/latest"},
            "messages": [
                {"role": "user", "content": "Summarise {{ record_id }} ({{ model }}): {{ answer }}"}
            ],
        },
    )
    offline_run(run_cli, "specs/summary.yaml")
    chained = read_records(only_run(project))
    assert list(chained) == [f"summary/{record_id}" for record_id in earlier]
    for record_id, record in earlier.items():
        mine = chained[f"summary/{record_id}"]
        assert mine["vars"]["answer"] == record["output"]["content"]
        assert mine["vars"]["ticket"] == record["vars"]["ticket"]
        assert mine["vars"]["model"] == "openai/gpt-oss-20b"
        assert mine["vars"]["spec"] == "reply"


def test_chained_cases_filter_by_status_and_spec(project, run_cli):
    write_reply(project, expect=[{"contains": "x"}])
    write_yaml(
        project / "specs" / "other.yaml",
        {
            "version": 1,
            "name": "other",
            "model": "openai/gpt-oss-20b",
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    offline_run(run_cli, "specs/reply.yaml", "specs/other.yaml")
    summary = write_yaml(
        project / "specs" / "summary.yaml",
        {
            "version": 1,
            "name": "summary",
            "model": "openai/gpt-oss-20b",
            "cases": {"run": "../runs/latest", "spec": "other"},
            "messages": [{"role": "user", "content": "{{ answer }}"}],
        },
    )
    offline_run(run_cli, str(summary))
    assert list(read_records(only_run(project))) == ["summary/other"]


def test_validate_says_what_a_chained_spec_lacks(project, run_cli):
    write_reply(project, expect=[{"contains": "x"}])
    offline_run(run_cli, "specs/reply.yaml")
    write_yaml(
        project / "specs" / "summary.yaml",
        {
            "version": 1,
            "name": "summary",
            "model": "openai/gpt-oss-20b",
            "cases": {"run": "../runs/latest"},
            "messages": [{"role": "user", "content": "{{ answer }} {{ customer }}"}],
        },
    )
    result = run_cli("validate", "specs/summary.yaml")
    assert result.exit_code == 1
    assert "has no value for 'customer'" in result.output
    assert "specs/summary.yaml:" in result.output


def test_validate_says_when_the_run_does_not_exist(project, run_cli):
    write_yaml(
        project / "specs" / "summary.yaml",
        {
            "version": 1,
            "name": "summary",
            "model": "openai/gpt-oss-20b",
            "cases": {"run": "../runs/20260101T000000Z-abcdef"},
            "messages": [{"role": "user", "content": "{{ answer }}"}],
        },
    )
    result = run_cli("validate", "specs/summary.yaml")
    assert result.exit_code == 1
    assert "specs/summary.yaml:5:" in result.output
    assert "does not exist" in result.output
    (project / "runs").mkdir()
    (project / "specs" / "summary.yaml").write_text(
        (project / "specs" / "summary.yaml")
        .read_text()
        .replace("20260101T000000Z-abcdef", "latest")
    )
    result = run_cli("validate", "specs/summary.yaml")
    assert "there is no run in" in result.output


# ---- validation of judges


def test_validate_checks_the_judge_is_a_verdict_judge(project, run_cli):
    write_judge(project, response_format=None)
    write_reply(project)
    result = run_cli("validate", "specs/reply.yaml")
    assert result.exit_code == 1
    assert "a judge must answer with structured output" in result.output


def test_validate_checks_the_verdict_schema(project, run_cli):
    schema = json.loads(json.dumps(VERDICT))
    schema["json_schema"]["schema"]["properties"]["pass"] = {"type": "string"}
    write_judge(project, response_format=schema)
    write_reply(project)
    result = run_cli("validate", "specs/reply.yaml")
    assert result.exit_code == 1
    assert "'pass' in the judge's response schema is not a boolean" in result.output


def test_validate_reports_a_missing_judge_and_options_without_one(project, run_cli):
    write_reply(project, [{"judge": "judges/polit.yaml"}, {"contains": "x", "threshold": 3}])
    write_judge(project)
    result = run_cli("validate", "specs/reply.yaml")
    assert result.exit_code == 1
    assert "judge spec not found: judges/polit.yaml" in result.output
    assert "did you mean 'judges/polite.yaml'?" in result.output
    assert "'threshold' goes with 'judge'" in result.output


def test_validate_reports_pass_if_score_without_a_threshold(project, run_cli):
    write_judge(project)
    write_reply(project, [{"judge": "judges/polite.yaml", "pass_if": "score"}])
    result = run_cli("validate", "specs/reply.yaml")
    assert result.exit_code == 1
    assert "pass_if: score needs a threshold" in result.output


def test_validate_reports_a_variable_the_judge_needs_and_no_record_gives(project, run_cli):
    write_judge(
        project,
        messages=[{"role": "user", "content": "{{ answer }} against {{ reference }}"}],
    )
    write_reply(project)
    result = run_cli("validate", "specs/reply.yaml")
    assert result.exit_code == 1
    assert "has no value for 'reference', which the judge specs/judges/polite.yaml uses" in (
        result.output
    )
    # The check's expected: gives the judge 'expected', filled in from the case.
    write_judge(
        project, messages=[{"role": "user", "content": "{{ answer }} against {{ expected }}"}]
    )
    write_reply(project, [{"judge": "judges/polite.yaml", "expected": "about {{ ticket }}"}])
    assert run_cli("validate", "specs/reply.yaml").exit_code == 0
    offline_run(run_cli, "specs/reply.yaml")
    for record in read_records(only_run(project)).values():
        asked = record["judges"][0]["request"]["messages"][-1]["content"]
        assert asked.endswith(f"against about {record['vars']['ticket']}")


SCORED = {
    "type": "json_schema",
    "json_schema": {
        "name": "scored",
        "schema": {
            "type": "object",
            "required": ["score"],
            "properties": {"score": {"type": "number", "minimum": 0, "maximum": 10}},
        },
    },
}


@pytest.mark.parametrize(
    "expression",
    [
        "{{ json.score | round }}",
        "{{ json.score | round(1) }}",
        "{{ json.score | int + 1 }}",
        "{{ (json.score / 10) | round(2) | abs }}",
        "{{ json.score // 2 }} {{ json.score % 2 }} {{ -json.score }}",
        "{{ [json.score, 1] | sum }} {{ json.score | float }}",
        "{{ '%.1f' | format(json.score) }}",
    ],
)
def test_a_judge_computing_with_the_answers_numbers_validates_and_runs(
    project, run_cli, expression
):
    write_judge(project, messages=[{"role": "user", "content": f"{{{{ answer }}}} {expression}"}])
    write_reply(project, response_format=SCORED)
    result = run_cli("validate", "specs/reply.yaml")
    assert result.exit_code == 0, result.output
    offline_run(run_cli, "specs/reply.yaml")
    assert all(r["judges"] for r in read_records(only_run(project)).values())


def test_judges_folders_are_not_run_on_their_own(project, run_cli):
    write_judge(project)
    write_reply(project)
    result = run_cli("validate", "specs")
    assert result.exit_code == 0, result.output
    assert result.output == "1 spec valid\n"  # the judge is not a spec of its own here


def test_the_report_shows_each_verdict_beside_its_answer_and_pass_rates(project, run_cli):
    write_judge(project)
    write_reply(project)
    offline_run(run_cli, "specs/reply.yaml")
    run_dir = only_run(project)
    result = run_cli("report", str(run_dir), "--format", "md")
    assert "#### Judges: pass rate per judge and model" in result.output
    assert "| judges/polite.yaml | openai/gpt-oss-20b | 3 |" in result.output


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_html_report_shows_verdicts_beside_the_answers_in_a_browser(
    project, openai_server, server_run, run_cli
):
    write_judge(project)
    write_reply(project)
    hostile = {"pass": False, "score": 1, "reason": "<script>alert(1)</script> curt"}
    reply = json.dumps({"content": json.dumps(hostile)})
    openai_server.plan(f"reply:{reply}", marker="judge marker")
    assert server_run("specs/reply.yaml").exit_code == 0
    report = project / "report.html"
    assert run_cli("report", str(only_run(project)), "-o", str(report)).exit_code == 0
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(report.as_uri())
        shown = page.locator("#record-table .judge-verdict")
        assert shown.count() == 3
        assert all(shown.nth(i).is_visible() for i in range(3))  # beside the answer, not folded
        texts = [shown.nth(i).inner_text() for i in range(3)]
        assert "fail judges/polite.yaml (1): <script>alert(1)</script> curt" in texts
        rates = page.locator("table.judges tbody tr").first.inner_text()
        assert "judges/polite.yaml" in rates and "openai/gpt-oss-20b" in rates
        assert dialogs == []
        browser.close()


def test_batch_records_wait_for_their_verdicts_which_score_asks(project, run_cli):
    write_judge(project)
    write_reply(project)
    common = ("--provider", "offline", "--out", "runs")
    submitted = run_cli("batch", "submit", "specs/reply.yaml", *common)
    assert submitted.exit_code == 0, submitted.output
    assert "judges are not asked through the Batch API" in submitted.output
    run_dir = only_run(project)
    fetched = run_cli("batch", "fetch", str(run_dir))
    assert fetched.exit_code == 0, fetched.output
    assert "3 judge checks have no verdict yet" in fetched.output
    assert f"runner score {run_dir} asks them" in fetched.output
    for record in read_records(run_dir).values():
        assert judge_results(record)[0]["message"].startswith("not judged")
    scored = run_cli("score", str(run_dir))
    assert scored.exit_code == 0, scored.output
    for record in read_records(run_dir).values():
        assert judge_results(record)[0]["message"] == REASON
        assert record["judges"][0]["offline"] is True


def test_an_exported_cassette_replays_the_verdicts_too(project, openai_server, server_run, run_cli):
    write_judge(project)
    write_reply(project)
    assert server_run("specs/reply.yaml").exit_code == 0
    recorded = read_records(only_run(project))
    exported = run_cli("export", str(only_run(project)), "--format", "cassette", "-o", "c.jsonl")
    assert exported.exit_code == 0, exported.output
    assert len((project / "c.jsonl").read_text().splitlines()) == 6  # answers and judges
    replayed = server_run("specs/reply.yaml", "--replay", "c.jsonl", "--no-cache")
    assert replayed.exit_code == 0, replayed.output
    assert openai_server.count == 6  # nothing sent: the cassette answered all
    for record_id, record in read_records(only_run(project)).items():
        assert judge_results(record) == judge_results(recorded[record_id])


def test_a_dry_run_counts_the_judge_requests_that_follow_the_answers(project, run_cli):
    write_judge(project)
    write_reply(
        project,
        [
            {"judge": "judges/polite.yaml"},
            {"judge": "judges/polite.yaml", "threshold": 2},  # the same request: shared
            {"judge": "judges/polite.yaml", "expected": "{{ ticket }}"},  # another request
        ],
    )
    result = run_cli("run", "specs/reply.yaml", "--provider", "offline", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["judges"] == 6
    assert [r["judges"] for r in plan["requests"]] == [2, 2, 2]
    assert not (project / "runs").exists()


def test_the_manifest_counts_the_verdicts_per_judge_and_model(project, run_cli):
    write_judge(project)
    write_reply(project)
    offline_run(run_cli, "specs/reply.yaml")
    manifest = json.loads((only_run(project) / "manifest.json").read_text())
    (rate,) = manifest["counts"]["judges"]["rates"]
    assert (rate["judge"], rate["model"], rate["verdicts"]) == (
        "judges/polite.yaml",
        "openai/gpt-oss-20b",
        3,
    )
    assert manifest["counts"]["judges"]["offline"] == 3
