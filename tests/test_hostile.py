"""Hostile specs: sandbox escapes, files outside the project, and names that are paths.

A spec from someone else's repository must not read files outside the project, reach Python
internals from a template, or make the runner write outside the run directory. Each attempt
fails with a ``file:line:column: message`` and exit code 1, never a traceback, and nothing from
outside the project shows up in the output.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import yaml
from helpers import read_records

from runner.runs.store import RunStore

# Looks like a secret; lives outside the project, so it must never be printed.
OUTSIDE_SECRET = "OUTSIDE-SECRET-7f3a9c1e"

SPEC = """\
version: 1
name: hostile
model: openai/gpt-oss-120b
vars:
  topic: tea
messages:
  - role: user
    content: {content}
"""


def symlink(target: Path, link: Path) -> None:
    """A symbolic link, or the test skipped where this user may not make one (Windows
    without Developer Mode)."""
    try:
        os.symlink(target, link, target_is_directory=target.is_dir())
    except OSError as exc:
        pytest.skip(f"cannot make a symbolic link here: {exc}")


@pytest.fixture
def hostile_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project in tmp_path/project, with a secret file just outside it."""
    (tmp_path / "outside.txt").write_text(f"password = {OUTSIDE_SECRET}\n")
    (tmp_path / "outside.json").write_text(json.dumps({"type": "object", "x": OUTSIDE_SECRET}))
    project = tmp_path / "project"
    (project / "templates").mkdir(parents=True)
    (project / "templates" / "ok.j2").write_text("fine {{ topic }}")
    (project / "pyproject.toml").write_text("")
    monkeypatch.chdir(project)
    return project


def write(project: Path, content: str, name: str = "spec.yaml") -> str:
    (project / name).write_text(SPEC.format(content=json.dumps(content)))
    return name


def assert_refused(result, where: str = "spec.yaml:8:14: ") -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert OUTSIDE_SECRET not in result.output
    assert "root:" not in result.output and "uid=" not in result.output
    problems = [line for line in result.output.splitlines() if line.startswith("spec.yaml:")]
    assert problems, result.output
    assert problems[0].startswith(where), problems


ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ '{0.__class__.__mro__}'.format(topic) }}",
    "{{ lipsum.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ topic['__class__'] }}",
    "{{ topic|attr('__class__') }}",
    "{{ config }}",
    "{{ request }}",
    "{{ config.items() }}",
    "{% include '/etc/passwd' %}",
    "{% include '../outside.txt' %}",
    "{% include '../../outside.txt' %}",
    "{% include 'templates/../../outside.txt' %}",
    "{% import '/etc/passwd' as p %}{{ p }}",
    "{% import '../outside.txt' as o %}{{ o }}",
    "{% from '../outside.txt' import password %}{{ password }}",
    "{% extends '../outside.txt' %}",
    "{% include ['../outside.txt', '/etc/passwd'] %}",
    "{% set p = '../outside.txt' %}{% include p %}",
    "{% include 'link.j2' %}",
]


@pytest.mark.parametrize("template", ESCAPES)
@pytest.mark.parametrize("command", ["render", "validate"])
def test_sandbox_escapes_fail_cleanly(hostile_project, run_cli, template, command):
    symlink(hostile_project.parent / "outside.txt", hostile_project / "templates" / "link.j2")
    write(hostile_project, template)

    result = run_cli(command, "spec.yaml")

    assert_refused(result)
    assert result.stdout == "" or command == "validate"


BOMBS = [
    "{{ 'x' * 10**12 }}",
    "{{ topic * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}",
    "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
    # widening filters and string methods
    "{{ 'x'|center(1000000000) }}",
    "{{ 'a'|indent(999999999, true) }}",
    "{{ range(100000)|join('x' * 999999) }}",
    "{{ ('x' * 999999)|replace('x', 'yyyyyyyyyy') }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '{:>1000000000}'.format(1) }}",
    "{{ 'x'.ljust(1000000000) }}",
    "{{ 'x'.zfill(1000000000) }}",
    "{{ ('x' * 999999).join(range(1000)) }}",
    "{{ ('\t' * 999999).expandtabs(100) }}",
    # output and built text in all (issue 22.7): each piece is allowed, the total is not
    "{% for i in range(100000) %}{{ 'a' * 1000000 }}{% endfor %}",
    "{% set x %}{% for i in range(100000) %}{{ 'a' * 1000000 }}{% endfor %}{% endset %}{{ x }}",
    "{% macro m() %}{% for i in range(9999) %}{{ 'a' * 99999 }}{% endfor %}{% endmacro %}{{ m() }}",
    "{% filter upper %}{% for i in range(99999) %}{{ 'a' * 999999 }}{% endfor %}{% endfilter %}",
    "{% set n = namespace(s='a') %}{% for i in range(60) %}{% set n.s = n.s ~ n.s %}{% endfor %}",
    "{% set n = namespace(s='a') %}{% for i in range(60) %}{% set n.s = n.s + n.s %}{% endfor %}",
    # a literal repeated in a macro (gathered before it is joined), loops over long strings
    "{% macro m() %}{% for i in range(999) %}{% for j in range(1000) %}"
    + "x" * 100
    + "{% endfor %}{% endfor %}{% endmacro %}{{ m() }}",
    "{% set s = 'x' * 999999 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
]


@pytest.mark.parametrize("template", BOMBS)
def test_templates_cannot_exhaust_memory_or_time(hostile_project, run_cli, template):
    """Found by this battery: these raised MemoryError / RecursionError tracebacks or hung."""
    write(hostile_project, template)

    result = run_cli("render", "spec.yaml")

    assert_refused(result)


@pytest.mark.no_render_audit
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_template_looping_a_large_text_stops_at_its_line_in_little_memory(
    hostile_project, command
):
    """Issue 22.7: `{{ 'a' * 1000000 }}` looped 100,000 times took 15 GB under validate."""
    write(hostile_project, "{% for i in range(100000) %}{{ 'a' * 1000000 }}{% endfor %}")
    args = (
        ["run", "spec.yaml", "--provider", "offline"]
        if command == "run"
        else [command, "spec.yaml"]
    )

    def at_most_two_gigabytes() -> None:  # the old runner would take the machine's memory
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    with open(hostile_project / "out.txt", "wb+") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", *args],
            cwd=hostile_project,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=at_most_two_gigabytes,
        )
        timer = threading.Timer(60, process.kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode()
    assert process.returncode == 1, output
    assert "spec.yaml:8:14: template tried something unsafe: the template's output passes" in (
        output
    )
    assert "Traceback" not in output
    assert usage.ru_maxrss < 400 * 1024, usage.ru_maxrss  # kilobytes: well under 400 MB


def test_ordinary_arithmetic_and_ranges_still_work(hostile_project, run_cli):
    write(
        hostile_project,
        "{{ range(3)|join(',') }} {{ [1, 2] * 2 }} {{ 2**10 }} {{ topic * 2 }} "
        "{{ 'ok'|center(6) }}|{{ '%3d' % 7 }}|{{ '{:>3}'.format(1) }}|{{ 'a'.ljust(2) }}|",
    )

    result = run_cli("render", "spec.yaml")

    assert result.exit_code == 0, result.output
    content = json.loads(result.stdout)["messages"][0]["content"]
    assert content == "0,1,2 [1, 2, 1, 2] 1024 teatea   ok  |  7|  1|a |"


def test_a_symlinked_include_is_refused_even_when_only_rendering(hostile_project):
    """The loader itself refuses links out of templates/ (not only the validator)."""
    import jinja2
    from jinja2.sandbox import SecurityError

    from runner.spec.render import template_environment

    symlink(hostile_project.parent / "outside.txt", hostile_project / "templates" / "link.j2")
    env = template_environment(hostile_project)
    with pytest.raises(SecurityError, match="outside templates/"):
        env.from_string("{% include 'link.j2' %}").render()
    with pytest.raises(jinja2.TemplateNotFound):
        env.from_string("{% include '../outside.txt' %}").render()


def test_a_link_inside_templates_to_another_template_is_fine(hostile_project, run_cli):
    symlink(hostile_project / "templates" / "ok.j2", hostile_project / "templates" / "alias.j2")
    write(hostile_project, "{% include 'alias.j2' %}")

    result = run_cli("render", "spec.yaml")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["messages"][0]["content"] == "fine tea"


def test_includes_come_from_the_spec_s_own_project(tmp_path, run_cli, monkeypatch):
    """Two projects with the same relative spec path: each renders its own templates/."""
    for name in ("one", "two"):
        project = tmp_path / name
        (project / "templates").mkdir(parents=True)
        (project / "templates" / "who.j2").write_text(f"project {name}")
        (project / "pyproject.toml").write_text("")
        write(project, "{% include 'who.j2' %}")
    for name in ("one", "two"):
        monkeypatch.chdir(tmp_path / name)
        result = run_cli("render", "spec.yaml")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["messages"][0]["content"] == f"project {name}"


def test_an_optional_include_that_is_missing_is_fine(hostile_project, run_cli):
    write(hostile_project, "{% include 'extra.j2' ignore missing %}{{ topic }}")

    assert run_cli("validate", "spec.yaml").exit_code == 0
    result = run_cli("render", "spec.yaml")
    assert json.loads(result.stdout)["messages"][0]["content"] == "tea"


def test_mapping_keys_with_one_underscore_still_render(hostile_project, run_cli):
    (hostile_project / "spec.yaml").write_text(
        SPEC.format(content=json.dumps("{{ row._id }} {{ row['_id'] }}")).replace(
            "  topic: tea", "  row: {_id: 7}"
        )
    )

    result = run_cli("render", "spec.yaml")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["messages"][0]["content"] == "7 7"


# ---- $ref to files outside the project


def ref_spec(project: Path, ref: str) -> None:
    spec = {
        "version": 1,
        "name": "refs",
        "model": "openai/gpt-oss-120b",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"$ref": ref}},
        },
        "messages": [{"role": "user", "content": "Answer in JSON."}],
    }
    (project / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.mark.parametrize(
    "ref",
    [
        "/etc/passwd",
        "../outside.json",
        "../../outside.json",
        "schemas/../../outside.json",
        "schemas/link.json",
        "schemas/dir-link/outside.json",
        "file:///etc/passwd",
        "http://127.0.0.1:9/schema.json",
    ],
)
@pytest.mark.parametrize("command", ["render", "validate"])
def test_refs_outside_the_project_are_refused(hostile_project, run_cli, ref, command):
    schemas = hostile_project / "schemas"
    schemas.mkdir()
    symlink(hostile_project.parent / "outside.json", schemas / "link.json")
    symlink(hostile_project.parent, schemas / "dir-link")
    ref_spec(hostile_project, ref)

    result = run_cli(command, "spec.yaml")

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and OUTSIDE_SECRET not in result.output
    assert "spec.yaml:" in result.output
    # A file outside that does not exist is reported as missing (the fix is to supply it).
    refused = ("outside the project", "URL", "$ref file not found")
    assert any(reason in result.output for reason in refused), result.output


def test_a_ref_inside_a_ref_file_may_not_leave_the_project(hostile_project, run_cli):
    (hostile_project / "schemas").mkdir()
    (hostile_project / "schemas" / "inner.json").write_text(
        json.dumps({"type": "object", "properties": {"a": {"$ref": "../../outside.json"}}})
    )
    ref_spec(hostile_project, "schemas/inner.json")

    result = run_cli("validate", "spec.yaml")

    assert result.exit_code == 1
    assert "outside the project" in result.output and OUTSIDE_SECRET not in result.output


# ---- names that are paths


KEPT = {"ok.j2", "pyproject.toml"}
BAD_NAMES = ["../../evil", "/etc/x", "..", ".", "a/b", "a\\b", "a\x00b", "evil\n", "-rf", " "]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_that_are_paths_never_leave_the_records_folder(hostile_project, run_cli, name):
    """Validation refuses such names; any it lets through, the store files safely."""
    spec = yaml.safe_load(SPEC.format(content='"hi"'))
    spec["name"] = name
    (hostile_project / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    result = run_cli("validate", "spec.yaml")
    if result.exit_code == 1:
        assert "spec.yaml:2:7: 'name' must start with a letter or digit" in result.output
        return
    assert result.exit_code == 0, result.output
    result = run_cli("run", "spec.yaml", "--provider", "offline", "--out", "runs")
    assert result.exit_code == 0, result.output
    (run_dir,) = (hostile_project / "runs").iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["manifest.json", "results.jsonl"]
    (record,) = read_records(run_dir).values()
    assert record["id"] == name
    outside = [p for p in hostile_project.rglob("*") if p.is_file() and "runs" not in p.parts]
    assert sorted(p.name for p in outside) == ["ok.j2", "pyproject.toml", "spec.yaml"]


def test_a_name_ending_in_a_newline_is_refused(hostile_project, run_cli):
    spec = yaml.safe_load(SPEC.format(content='"hi"'))
    spec["name"] = "evil\n"
    (hostile_project / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    assert run_cli("validate", "spec.yaml").exit_code == 1


@pytest.mark.parametrize(
    "record_id", [*BAD_NAMES, "a/../../b", "../" * 50 + "x", "x" * 400, "\u202e", "a\tb"]
)
def test_any_record_id_is_data_in_results_jsonl_never_a_file_name(tmp_path, record_id):
    store = RunStore.create(tmp_path / "runs")

    store.save_record({"id": record_id, "status": "ok"})
    store.save_record({"id": "next", "status": "ok"})
    store.close()

    files = {p for p in (tmp_path / "runs").rglob("*") if p.is_file()}
    assert files == {store.root / "results.jsonl"}
    assert [r["id"] for r in store.records()] == [record_id, "next"]


def test_a_spec_file_name_that_is_not_a_safe_name_runs_inside_the_run_dir(hostile_project, run_cli):
    """Without 'name:', the file name is the name; odd file names still stay in records/."""
    specs = hostile_project / "specs"
    specs.mkdir()
    for stem in ("a b", "a-b", "x..y", "日本"):
        spec = yaml.safe_load(SPEC.format(content='"hi"'))
        del spec["name"]
        (specs / f"{stem}.yaml").write_text(yaml.safe_dump(spec))

    result = run_cli("run", "specs", "--provider", "offline")

    assert result.exit_code == 0, result.output
    (run_dir,) = (hostile_project / "runs").iterdir()
    records = list(read_records(run_dir).values())
    assert sorted(r["id"] for r in records) == sorted(["a b", "a-b", "x..y", "日本"])
    written = [p for p in hostile_project.rglob("*") if p.is_file() and "specs" not in p.parts]
    assert all(run_dir in p.parents for p in written if p.name not in KEPT)


# ---- Run directories are input too (issue 22.10, 22.11)

CASES_SPEC = """\
version: 1
name: ex
model: openai/gpt-oss-120b
messages:
  - role: user
    content: "Say {{ w }}"
cases:
  - {id: a, w: one}
  - {id: b, w: two}
  - {id: c, w: three}
expect:
  - contains: "o"
"""


@pytest.fixture
def printed_warnings():
    """Library warnings printed to the command's stderr, as ``runner``'s entry point does."""
    from runner.cli.options import print_runner_warnings

    with warnings.catch_warnings():
        print_runner_warnings()
        yield


@pytest.fixture
def offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli, printed_warnings) -> Path:
    """A finished offline run of three records, in tmp_path/project/runs."""
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    (project / "specs" / "ex.yaml").write_text(CASES_SPEC)
    monkeypatch.chdir(project)
    ran = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--json")
    assert ran.exit_code == 0, ran.output
    return Path(json.loads(ran.stdout)["run_dir"])


def with_line(run: Path, number: int, line: bytes) -> None:
    """Replace line ``number`` (1-based) of the run's results.jsonl with ``line``."""
    lines = (run / "results.jsonl").read_bytes().splitlines(keepends=True)
    lines[number - 1] = line
    (run / "results.jsonl").write_bytes(b"".join(lines))


READERS = (
    ("report", "{run}", "-o", "report.html"),
    ("report", "{run}", "--format", "md"),
    ("report", "{good}", "{run}", "-o", "compare.html"),
    ("export", "{run}", "-o", "rows.csv"),
    ("export", "{run}", "-o", "rows.jsonl", "--format", "jsonl"),
    ("export", "{run}", "-o", "cassette.jsonl"),
    ("diff", "{good}", "{run}"),
    ("diff", "{run}", "{good}", "--json"),
    ("show", "{run}"),
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (("latency_ms",), "slow"),
        (("output",), [1, 2]),
        (("vars",), ["a"]),
        (("usage", "total_tokens"), "many"),
        (("output", "content"), {"a": 1}),
        (("matrix",), [1]),
        (("spec",), "x"),
        (("expectations",), [1]),
    ],
)
def test_a_record_with_a_field_of_the_wrong_type_is_named_and_the_rest_shown(
    offline_run, run_cli, field, value
):
    """Issue 22.11: such a record was a traceback in report, export and diff."""
    good = offline_run.parent / "good"
    shutil.copytree(offline_run, good)
    lines = (offline_run / "results.jsonl").read_bytes().splitlines(keepends=True)
    record = json.loads(lines[1])
    target = record
    for key in field[:-1]:
        target = target.setdefault(key, {})
    target[field[-1]] = value
    with_line(offline_run, 2, (json.dumps(record) + "\n").encode())
    for command in READERS:
        args = [a.format(run=offline_run, good=good) for a in command]
        result = run_cli(*args)
        assert result.exit_code in (0, 1), (args, result.output)
        assert "Traceback" not in result.output
        if command[0] != "diff" and command[1] == "{run}":
            assert f"results.jsonl:2: warning: record 'ex/b': '{'.'.join(field)}'" in (
                result.stderr
            ), (args, result.stderr)
    shown = run_cli("show", offline_run)
    assert "ex/a" in shown.stdout and "ex/c" in shown.stdout
    rows = (offline_run.parent.parent / "rows.csv").read_text().splitlines()
    assert len(rows) == 4


def test_score_keeps_every_line_it_cannot_read_byte_for_byte(offline_run, run_cli):
    """Issue 22.10: runner score rewrote results.jsonl without a line of invalid UTF-8 and
    exited 0; and a field of the wrong type is written back as it was."""
    bad = b'{"id": "ex/b", "note": "\xff"}\n'
    odd = json.loads((offline_run / "results.jsonl").read_bytes().splitlines()[2])
    odd["latency_ms"] = "slow"
    with_line(offline_run, 2, bad)
    with_line(offline_run, 3, (json.dumps(odd) + "\n").encode())
    with open(offline_run / "results.jsonl", "ab") as handle:
        handle.write(b'not json at all\n{"id": "torn')
    result = run_cli("score", offline_run)
    assert result.exit_code == 0, result.output
    assert "results.jsonl:2: warning: invalid UTF-8" in result.stderr
    assert "results.jsonl:3: warning: record 'ex/c': 'latency_ms' is text" in result.stderr
    assert "results.jsonl:4: warning: not JSON" in result.stderr
    assert "results.jsonl:5: warning: a last line without its end" in result.stderr
    lines = (offline_run / "results.jsonl").read_bytes().splitlines(keepends=True)
    assert lines[1] == bad
    assert json.loads(lines[2])["latency_ms"] == "slow"
    assert "expectations" in json.loads(lines[2])
    assert lines[3:] == [b"not json at all\n", b'{"id": "torn']


# ---- Bounded work: regex checks (issue 22.6)

BACKTRACKING_SPEC = """\
version: 1
name: slow
model: openai/gpt-oss-120b
messages:
  - role: user
    content: "{{ w }}"
cases:
CASES
expect:
  - regex: '(a|aa)+$'
"""


def backtracking_project(root: Path, cases: int) -> Path:
    """A project whose one spec checks each answer (36 a's and a b) with a pattern that
    backtracks for hours under Python's re."""
    (root / "specs").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    rows = "\n".join(f"  - {{id: c{i}, w: {'a' * 36}b}}" for i in range(cases))
    (root / "specs" / "slow.yaml").write_text(BACKTRACKING_SPEC.replace("CASES", rows))
    return root


def test_a_backtracking_regex_check_ends_in_run_and_score(tmp_path, monkeypatch, run_cli):
    """`(a+)+$`-style patterns hung a run for 11 minutes, and runner score too; each search
    now stops at its time limit and the check fails, saying why."""
    import runner.spec.patterns as patterns

    monkeypatch.setattr(patterns, "SEARCH_SECONDS", 0.05)
    monkeypatch.chdir(backtracking_project(tmp_path / "project", 2))
    ran = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--json")
    run_dir = Path(json.loads(ran.stdout)["run_dir"])
    checks = [r["expectations"]["checks"][0] for r in read_records(run_dir).values()]
    assert len(checks) == 2 and not any(c["passed"] for c in checks)
    assert all("was stopped: it backtracks" in c["message"] for c in checks)
    scored = run_cli("score", run_dir)
    assert scored.exit_code == 0, scored.output
    assert "0 of 2" in scored.stdout + scored.stderr


def test_validate_refuses_a_pattern_the_engine_cannot_compile_at_its_line(tmp_path, run_cli):
    spec = backtracking_project(tmp_path / "p", 1) / "specs" / "slow.yaml"
    spec.write_text(spec.read_text().replace("(a|aa)+$", "(a|b"))
    result = run_cli("validate", spec)
    assert result.exit_code == 1
    assert "slow.yaml:10:12: regex '(a|b' is not a valid regular expression" in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_run_while_a_regex_check_runs(tmp_path, signum):
    """SIGTERM did not stop a run stuck in a check: re held the interpreter lock."""
    project = backtracking_project(tmp_path / "project", 60)  # a minute of checks, at -c 2
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "specs", "--provider", "offline", "-c", "2"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = project / "runs"
    deadline = time.monotonic() + 30
    while not any(runs.glob("*/results.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == (143 if signum == signal.SIGTERM else 130), stderr
    assert "Traceback" not in stderr
