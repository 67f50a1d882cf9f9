"""`runner report`: the HTML page opened in headless Chromium, and the Markdown overview.

The browser is Debian's /usr/bin/chromium driven by playwright (never a downloaded browser),
started once for the module. Screenshots go to $RUNNER_TEST_ARTIFACTS when it is set (CI keeps
that folder), else to pytest's temporary folder.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from helpers import KEY, KEY_ENV, SENTIMENT, latest_run, run_args, write_spec

from runner.results.diff import diff_runs
from runner.results.report import Sample, build_report

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "<script>alert(1)</script> and </td></tr></table> and {{ x }} & done"
IMAGE = "<img src=x onerror=alert(2)>"  # a request for x, and a dialog, if it were markup
GRID = {"model": ["m-small", "m-large"]}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def open_report(browser, tmp_path):
    """Open a report file; every request the page makes is recorded (and any not for the
    file itself is refused), and any dialog is recorded and dismissed."""
    pages = []

    def open_(path: Path):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.requests = []  # type: ignore[attr-defined]
        page.dialogs = []  # type: ignore[attr-defined]
        page.on("request", lambda request: page.requests.append(request.url))
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url == path.as_uri() else route.abort()
            ),
        )
        page.goto(path.as_uri())
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()


def screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RUNNER_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def visible_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "#record-table > tbody > tr:not([hidden])", "rows => rows.map(r => r.dataset.id)"
    )


def count_cell(page, label: str, name: str, run: int = 0) -> str:
    selector = f'.run-overview[data-run="{run}"] tr[data-label="{label}"] td[data-count="{name}"]'
    return page.inner_text(selector).strip()


def test_offline_report_shows_counts_filters_and_the_matrix(
    project, run_cli, open_report, tmp_path
):
    write_spec(project, "grid", "Pick one ({{ topic }}).", matrix=GRID, cases=_cases(3))
    write_spec(project, "json", "Answer in JSON (json).", response_format=SENTIMENT)
    assert run_cli("run", "specs", "--provider", "offline", "--out", "runs", "-q").exit_code == 0
    run = latest_run(project)
    result = run_cli("report", run, "-o", "report.html")
    assert result.exit_code == 0, result.stderr
    assert "7 of 7 records" in result.stderr

    page = open_report(project / "report.html")
    assert count_cell(page, "all", "requests") == "7"
    assert count_cell(page, "all", "ok") == "7"
    assert count_cell(page, "grid", "requests") == "6"
    assert count_cell(page, "json", "failed") == "0"
    assert page.inner_text("#shown") == "7"

    page.select_option('select[data-filter="model"]', "m-large")
    assert sorted(visible_ids(page)) == [f"grid/c{i}/model=m-large" for i in range(3)]
    assert page.inner_text("#shown") == "3"
    page.select_option('select[data-filter="model"]', "")
    page.fill("#search", "topic-1")
    assert sorted(visible_ids(page)) == ["grid/c1/model=m-large", "grid/c1/model=m-small"]
    page.fill("#search", "")

    header = page.eval_on_selector_all(
        'table.matrix[data-spec="grid"] thead th', "cells => cells.map(c => c.textContent)"
    )
    assert header == ["case", "model=m-small", "model=m-large"]  # the spec's (plan) order
    cells = page.eval_on_selector_all(
        'table.matrix[data-spec="grid"] tbody tr',
        "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.split('\\n')[0]))",
    )
    assert [row[0] for row in cells] == ["c0", "c1", "c2"]
    assert all(len(row) == 3 and "ok" in row[1] and "ok" in row[2] for row in cells)

    page.click('#record-table th[data-sort="latency"]')
    page.click('#record-table th[data-sort="latency"]')
    latencies = page.eval_on_selector_all(
        "#record-table > tbody > tr", "rows => rows.map(r => parseFloat(r.dataset.latency))"
    )
    assert latencies == sorted(latencies, reverse=True)
    assert page.requests == [(project / "report.html").as_uri()]
    screenshot(page, "report-offline", tmp_path)


def test_hostile_answers_show_as_text_and_two_runs_are_compared(
    project, run_cli, openai_server, open_report, monkeypatch, tmp_path
):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "hostile", "Say it (hostile).")
    write_spec(project, "steady", "Say it (steady) {{ note }}", vars={"note": IMAGE})
    write_spec(project, "grid", "Pick one ({{ topic }}).", matrix=GRID, cases=_cases(2))
    for out, reply in (("a", "before"), ("b", HOSTILE)):
        openai_server.plan("reply:" + json.dumps({"content": reply}), marker="(hostile)")
        run = run_cli(*run_args(openai_server.base_url), "--no-cache", "--out", out, "-q")
        assert run.exit_code == 0, run.stderr
    run_a, run_b = (next((project / out).iterdir()) for out in ("a", "b"))

    result = run_cli("report", run_a, run_b, "-o", "compare.html")
    assert result.exit_code == 0, result.stderr
    page = open_report(project / "compare.html")

    assert page.dialogs == []
    assert page.eval_on_selector_all("script", "s => s.length") == 1
    page.click('#record-table tr[data-id="hostile"] summary')
    answer = page.inner_text('#record-table tr[data-id="hostile"] pre.text')
    assert answer == HOSTILE
    assert page.dialogs == []
    page.click('#record-table tr[data-id="steady"] summary')
    assert IMAGE in page.inner_text('#record-table tr[data-id="steady"] dl.fields')
    assert page.eval_on_selector_all("img", "images => images.length") == 0

    assert page.inner_text("#comparison-counts").startswith(
        "6 records paired by id: 1 changed (1 answer);"
    )
    changed = page.eval_on_selector_all(
        "#pairs tbody tr.changed-answer", "rows => rows.map(r => r.dataset.id)"
    )
    assert changed == ["hostile"]
    assert page.inner_text('#pairs tr[data-id="hostile"] td.before pre') == "before"
    assert page.inner_text('#pairs tr[data-id="hostile"] td.after pre') == HOSTILE
    assert count_cell(page, "all", "requests", run=0) == "6"
    assert count_cell(page, "all", "requests", run=1) == "6"
    assert page.requests == [(project / "compare.html").as_uri()]
    screenshot(page, "report-compare", tmp_path)


def test_markdown_overview_escapes_table_breakers(project, run_cli, openai_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "plain", "Say it (plain).", matrix={"model": ["x|y <b>", "z"]})
    assert run_cli(*run_args(openai_server.base_url), "-q").exit_code == 0
    result = run_cli("report", latest_run(project), "--format", "md")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "| spec | requests | ok | failed | invalid output |" in result.stdout
    assert "| **all** | 2 | 2 | 0 | 0 |" in result.stdout
    model_line = next(line for line in lines if line.startswith("| x"))
    assert model_line.startswith("| x\\|y &lt;b&gt; | 1 | 1 | 0 | 0 |")


def test_the_cost_per_model_the_manifest_counted_is_shown(project, run_cli):
    write_spec(project, "plain", "Say it.", matrix={"model": ["openai/gpt-oss-20b", "x|y"]})
    assert run_cli("run", "specs", "--provider", "offline", "--out", "runs", "-q").exit_code == 0
    run_dir = latest_run(project)
    manifest_path = Path(run_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # as a priced run's manifest holds it (runner/runs/cost.py); a wrong type is left out
    manifest["counts"]["cost"] = {
        "usd": 0.0125,
        "by_model": {"openai/gpt-oss-20b": 0.0025, "x|y": 0.01, "odd": "a lot"},
        "unpriced": 2,
    }
    manifest_path.write_text(json.dumps(manifest))

    markdown = run_cli("report", run_dir, "--format", "md")
    assert markdown.exit_code == 0, markdown.stderr
    assert "#### Cost per model" in markdown.stdout
    assert "| openai/gpt-oss-20b | $0.0025 |" in markdown.stdout
    assert "| x\\|y | $0.0100 |" in markdown.stdout
    assert "| **total** | $0.0125 |" in markdown.stdout
    assert "2 answers could not be priced." in markdown.stdout
    assert "odd" not in markdown.stdout

    page = project / "r.html"
    assert run_cli("report", run_dir, "-o", str(page)).exit_code == 0
    html = page.read_text()
    assert '<tr data-model="openai/gpt-oss-20b"><td>openai/gpt-oss-20b</td>' in html
    assert 'data-count="cost-total">$0.0125</td>' in html


def test_an_unpriced_run_shows_no_cost(project, run_cli):
    write_spec(project, "plain", "Say it.")
    assert run_cli("run", "specs", "--provider", "offline", "--out", "runs", "-q").exit_code == 0
    markdown = run_cli("report", latest_run(project), "--format", "md")
    assert "Cost per model" not in markdown.stdout


def test_a_row_cap_keeps_every_record_in_the_overview(project, run_cli):
    write_spec(project, "many", "Say ({{ topic }}).", cases=_cases(30))
    assert run_cli("run", "specs", "--provider", "offline", "--out", "runs", "-q").exit_code == 0
    report = build_report((latest_run(project),), max_rows=10)
    assert len(report.rows) == 10 and report.records == 30 and report.truncated
    assert report.runs[0].total.requests == 30
    result = run_cli("report", latest_run(project), "--max-rows", "10", "-o", "r.html")
    html = (project / "r.html").read_text()
    assert 'id="row-cap"' in html and "runner export" in html
    assert html.count("<tr data-id=") == 10
    assert "10 of 30 records" in result.stderr


def test_report_of_a_folder_that_is_not_a_run_is_a_usage_error(project, run_cli):
    (project / "nothing").mkdir()
    result = run_cli("report", "nothing")
    assert result.exit_code == 2
    assert "is not a run directory" in result.stderr


def test_sample_percentiles_are_exact_below_the_sample_size_and_close_above():
    small = Sample(size=1000)
    for value in range(1, 101):
        small.add(float(value))
    assert (small.percentile(50), small.percentile(95)) == (50.0, 95.0)
    large = Sample(size=1000)
    for value in range(100_000):
        large.add(float(value))
    assert len(large.values) == 1000
    assert abs((large.percentile(50) or 0) - 50_000) < 5_000
    assert Sample().percentile(50) is None


def _cases(n: int) -> list[dict[str, str]]:
    return [{"id": f"c{i}", "topic": f"topic-{i}"} for i in range(n)]


def _label_reply(label: str) -> str:
    return "reply:" + json.dumps({"content": json.dumps({"label": label, "score": 0.9})})


def test_expectations_show_as_pass_rates_filters_and_turned_verdicts(
    project, run_cli, openai_server, open_report, monkeypatch, tmp_path
):
    """Real `expect:` checks end to end: run twice against the test server (case b's answer
    turns from right to wrong, case c's from wrong to right), then report and export."""
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(
        project,
        "labels",
        "Classify in JSON (case-{{ id }}).",
        response_format=SENTIMENT,
        cases=[{"id": c, "expected": "positive"} for c in ("a", "b", "c", "d")],
        expect=[{"equals": "{{ expected }}", "path": "label"}],
    )
    answers = {"a": ("positive", "positive"), "b": ("positive", "negative")}
    answers |= {"c": ("negative", "positive"), "d": ("negative", "negative")}
    for run_index, out in enumerate(("a", "b")):
        for case, labels in answers.items():
            openai_server.plan(_label_reply(labels[run_index]), marker=f"(case-{case})")
        run = run_cli(*run_args(openai_server.base_url), "--no-cache", "--out", out, "-q")
        assert run.exit_code == 0, run.stderr
    run_a, run_b = (next((project / out).iterdir()) for out in ("a", "b"))

    result = run_cli("report", run_a, run_b, "-o", "scored.html")
    assert result.exit_code == 0, result.stderr
    page = open_report(project / "scored.html")
    assert count_cell(page, "all", "checked", run=1) == "4"
    assert count_cell(page, "all", "pass-rate", run=0) == "50.0%"
    assert count_cell(page, "labels", "pass-rate", run=1) == "50.0%"
    page.select_option('select[data-filter="verdict"]', "fail")
    assert sorted(visible_ids(page)) == ["labels/b", "labels/d"]
    assert "1 pass → fail, 1 fail → pass" in page.inner_text("#comparison-counts")
    turned = page.eval_on_selector_all(
        "#pairs tbody tr.changed-verdict", "rows => rows.map(r => r.dataset.id)"
    )
    assert turned == ["labels/b", "labels/c"]
    assert page.inner_text('#pairs tr[data-id="labels/b"] td.verdict') == "pass → fail"
    assert page.requests == [(project / "scored.html").as_uri()]
    screenshot(page, "report-expectations", tmp_path)

    comparison = build_report((run_a, run_b)).comparison
    assert comparison is not None
    assert comparison.changed == len(diff_runs(run_a, run_b).changed) == 2

    markdown = run_cli("report", run_b, "--format", "md").stdout
    assert "| **all** | 4 | 4 | 0 | 0 | 50.0% (2/4) |" in markdown
    exported = run_cli("export", run_b, "--format", "csv", "-o", "scored.csv")
    assert exported.exit_code == 0, exported.stderr
    with open(project / "scored.csv", encoding="utf-8", newline="") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    assert rows["labels/a"]["expect.passed"] == "True"
    assert rows["labels/b"]["expect.passed"] == "False"
    assert rows["labels/b"]["expect.failed"] == "1"
    assert "positive" in rows["labels/b"]["expect.failures"]
    assert rows["labels/b"]["json.label"] == "negative"


def test_streamed_runs_show_time_to_first_token(project, run_cli, openai_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "streamed", "Say it (streamed).", stream=True)
    write_spec(project, "whole", "Say it (whole).")
    assert run_cli(*run_args(openai_server.base_url), "-q").exit_code == 0
    run = latest_run(project)
    report = build_report((run,))
    by_spec = {row.label: row for row in report.runs[0].by_spec}
    assert by_spec["streamed"].ttft_p50 is not None and by_spec["streamed"].ttft_p50 > 0
    assert by_spec["whole"].ttft_p50 is None
    markdown = run_cli("report", run, "--format", "md").stdout
    assert "| ttft p50 | ttft p95 |" in markdown
    run_cli("export", run, "--format", "jsonl", "-o", "rows.jsonl")
    rows = {r["id"]: r for r in map(json.loads, (project / "rows.jsonl").read_text().splitlines())}
    assert rows["streamed"]["ttft_ms"] > 0 and rows["whole"]["ttft_ms"] is None
    html = run_cli("report", run, "-o", "r.html")
    assert html.exit_code == 0
    assert 'data-sort="ttft"' in (project / "r.html").read_text()


# ---- what a reviewer asks first (issues 27 and 29)

TEAM_SCHEMA = {
    "type": "object",
    "properties": {"team": {"type": "string", "enum": ["billing", "platform", "docs"]}},
    "required": ["team"],
    "additionalProperties": False,
}


def write_triage(project: Path, prompt: str = "Route: {{ ticket }}", cases: int = 6) -> None:
    """A matrix of two models over labelled tickets, each expecting its team."""
    teams = ("billing", "platform", "docs")
    write_spec(
        project,
        "triage",
        prompt,
        matrix=GRID,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "t", "strict": True, "schema": TEAM_SCHEMA},
        },
        cases=[
            {"id": f"t{i}", "ticket": f"ticket {i}", "team": teams[i % 3]} for i in range(cases)
        ],
        expect=[{"equals": "{{ team }}", "path": "team"}, {"max_tokens": 400}],
    )


def offline_run(run_cli) -> Path:
    result = run_cli("run", "specs", "--provider", "offline", "--json")
    return Path(json.loads(result.stdout)["run_dir"])


def test_the_matrix_shows_each_cases_inputs_expected_values_and_failed_checks(
    project, run_cli, open_report, tmp_path
):
    write_triage(project)
    run = offline_run(run_cli)
    assert run_cli("report", run, "-o", "report.html").exit_code == 0

    page = open_report(project / "report.html")
    case = page.inner_text('table.matrix tr[data-case="t1"] td.case')
    assert "ticket 1" in case and "expected: equals team platform" in " ".join(case.split())
    common = page.inner_text("p.common-checks")
    assert common == "Every case expects: max_tokens completion_tokens 400"
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    wrong = next(r for r in records if not r["expectations"]["passed"])
    cells = page.eval_on_selector_all(
        f'table.matrix tr[data-case="{wrong["case"]["id"]}"] td .check-failed',
        "cells => cells.map(c => c.innerText)",
    )
    team = wrong["output"]["parsed"]["team"]
    assert f"equals team: expected {wrong['vars']['team']}, got {team}" in cells
    screenshot(page, "report-matrix-inputs", tmp_path)


def test_within_the_row_cap_failed_records_come_first(project, run_cli):
    write_triage(project, cases=12)
    run = offline_run(run_cli)
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    failing = [r["id"] for r in records if not r["expectations"]["passed"]]
    assert 3 <= len(failing) < len(records)

    report = build_report((run,), max_rows=3)

    assert [row.id for row in report.rows] == failing[:3]
    whole = build_report((run,), max_rows=100)
    assert [row.id for row in whole.rows[: len(failing)]] == failing
    # The matrix keeps the run's order whatever the rows' order.
    assert [item.case for item in whole.matrices[0].cases] == [f"t{i}" for i in range(12)]


def test_two_runs_show_both_runs_records_side_by_side(project, run_cli, open_report, tmp_path):
    write_triage(project)
    write_spec(project, "gone", "Only in A.")
    run_a = offline_run(run_cli)
    write_triage(project, prompt="Route this ticket: {{ ticket }}")
    (project / "specs" / "gone.yaml").unlink()
    write_spec(project, "new", "Only in B.")
    run_b = offline_run(run_cli)

    report = build_report((run_a, run_b), max_rows=100)
    rows = {row.id: row for row in report.rows}
    assert report.records == 14 and len(rows) == 14
    assert rows["gone"].only_in_a and rows["new"].before is None
    paired = rows["triage/t0/model=m-small"]
    assert paired.before is not None and paired.before.text != paired.text and paired.changed
    first = [row.id for row in report.rows[:2]]
    assert "gone" in first or "new" in first or all(rows[i].changed for i in first)

    assert run_cli("report", run_a, run_b, "-o", "compare.html").exit_code == 0
    page = open_report(project / "compare.html")
    before = page.inner_text('#record-table tr[data-id="triage/t0/model=m-small"] td.before')
    assert paired.before.parsed[0][1] in before  # A's team, in A's column
    assert page.inner_text('#record-table tr[data-id="gone"] td.answer') == "only in A"
    assert page.inner_text('#record-table tr[data-id="new"] td.before') == "only in B"
    screenshot(page, "report-two-runs-records", tmp_path)


def test_offline_answers_are_labelled(project, run_cli, openai_server, monkeypatch):
    write_spec(project, "alpha")
    offline = offline_run(run_cli)
    html = run_cli("report", offline, "-o", "offline.html")
    assert html.exit_code == 0
    page = (project / "offline.html").read_text()
    assert 'id="offline-banner"' in page and "1 of 1 record was answered by the offline" in page
    markdown = run_cli("report", offline, "--format", "md").stdout
    assert "**Offline answers.** 1 of 1 record" in markdown
    monkeypatch.setenv(KEY_ENV, KEY)
    assert run_cli(*run_args(openai_server.base_url), "-q").exit_code == 0
    run_cli("report", latest_run(project), "-o", "server.html")
    assert 'id="offline-banner"' not in (project / "server.html").read_text()


def test_charts_show_what_the_tables_show_over_answered_requests(
    project, run_cli, openai_server, monkeypatch
):
    """A failed request has no latency or tokens worth averaging: the figures are over the
    answered ones, the failures counted apart; a sub-millisecond latency reads 0.x ms."""
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "ok1", "Say it (ok1).")
    write_spec(project, "ok2", "Say it (ok2).")
    write_spec(project, "down", "Say it (down).")
    openai_server.plan(*["500"] * 3, marker="(down)")
    result = run_cli(*run_args(openai_server.base_url), "--retries", "0", "--no-cache", "-q")
    assert result.exit_code == 1
    report = build_report((latest_run(project),))
    (model,) = report.runs[0].by_model
    assert (model.requests, model.failed, model.answered) == (3, 1, 2)
    assert model.tokens_per_request == model.answered_tokens / 2
    tokens = next(c for c in report.charts if c.title == "Tokens per answered request")
    assert tokens.bars[0].text.endswith("(1 failed, not counted)")
    latency = next(c for c in report.charts if c.title.startswith("Latency p50"))
    value = latency.bars[0].value
    assert latency.bars[0].text.startswith(f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms")
    assert not latency.bars[0].text.startswith("0 ms")


def test_a_long_answer_does_not_squeeze_the_other_column(
    project, run_cli, openai_server, open_report, monkeypatch, tmp_path
):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "grid", "Pick one ({{ topic }}).", matrix=GRID, cases=_cases(1))
    long = " ".join(["averyveryverylongwordwithoutbreaks" * 4] * 80)
    openai_server.plan("reply:" + json.dumps({"content": long}), marker="m-large")
    assert run_cli(*run_args(openai_server.base_url), "--no-cache", "-q").exit_code == 0
    assert run_cli("report", latest_run(project), "-o", "report.html").exit_code == 0
    page = open_report(project / "report.html")
    widths = page.eval_on_selector_all(
        'table.matrix[data-spec="grid"] thead th', "cells => cells.map(c => c.offsetWidth)"
    )
    small, large = widths[1], widths[2]
    assert abs(small - large) <= 2, widths
    table = page.eval_on_selector('table.matrix[data-spec="grid"]', "t => t.offsetWidth")
    section = page.eval_on_selector("#matrix", "s => s.clientWidth")
    assert table <= section
    screenshot(page, "report-long-answer", tmp_path)
