"""Cases (inline and data files), matrix sweeps, base specs and shared template parts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from helpers import latest_run, read_records

from runner.spec.cases import CaseSource, Selection, case_id, iter_cases

USER = {"role": "user", "content": "Review: {{ review }}"}


def write(project: Path, relative: str, text: str) -> Path:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_spec(project: Path, name: str = "s", **fields) -> Path:
    spec = {"version": 1, "model": "openai/gpt-oss-20b", "messages": [USER], **fields}
    return write(project, f"specs/{name}.yaml", yaml.safe_dump(spec, sort_keys=False))


def render(run_cli, spec: Path, *options: str) -> list[dict]:
    result = run_cli("render", spec, *options)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return data if isinstance(data, list) else [{"id": None, "body": data}]


def contents(requests: list[dict]) -> list[str]:
    return [r["body"]["messages"][-1]["content"] for r in requests]


# ---- sources


DATA_FILES = {
    "csv": "id,review\nr1,Great\nr2,Awful\n",
    "jsonl": '{"id": "r1", "review": "Great"}\n\n{"id": "r2", "review": "Awful"}\n',
    "json": '[{"id": "r1", "review": "Great"}, {"id": "r2", "review": "Awful"}]',
    "yaml": "- id: r1\n  review: Great\n- id: r2\n  review: Awful\n",
    "yml": "- {id: r1, review: Great}\n- {id: r2, review: Awful}\n",
}


@pytest.mark.parametrize("suffix", sorted(DATA_FILES))
def test_every_data_format_gives_one_request_per_row(project, run_cli, suffix):
    write(project, f"specs/data/reviews.{suffix}", DATA_FILES[suffix])
    spec = write_spec(project, cases=f"data/reviews.{suffix}")

    requests = render(run_cli, spec)

    assert [r["id"] for r in requests] == ["s/r1", "s/r2"]
    assert contents(requests) == ["Review: Great", "Review: Awful"]


def test_inline_cases(project, run_cli):
    spec = write_spec(project, cases=[{"id": "a", "review": "Fine"}, {"review": "Meh"}])

    requests = render(run_cli, spec)

    assert requests[0]["id"] == "s/a"
    assert requests[1]["id"] == "s/" + case_id({"review": "Meh"})
    assert contents(requests) == ["Review: Fine", "Review: Meh"]


def test_case_values_override_vars_and_command_line_vars_override_both(project, run_cli):
    spec = write_spec(
        project,
        vars={"review": "default", "tone": "calm"},
        messages=[{"role": "user", "content": "{{ review }} / {{ tone }}"}],
        cases=[{"id": "a", "review": "from case"}],
    )

    assert contents(render(run_cli, spec)) == ["from case / calm"]
    assert contents(render(run_cli, spec, "--var", "tone=loud")) == ["from case / loud"]


# ---- ids


def test_content_ids_stay_the_same_when_rows_are_reordered_or_inserted(project):
    first = write(project, "a.csv", "review,stars\nGreat,5\nAwful,1\n")
    second = write(project, "b.csv", "stars,review\n3,New one\n1,Awful\n5,Great\n")

    def ids(path: Path) -> dict[str, str]:
        source = CaseSource(str(path), file=path)
        return {c.vars["review"]: c.id for c in iter_cases(source)}

    before, after = ids(first), ids(second)
    assert before["Great"] == after["Great"] and before["Awful"] == after["Awful"]
    assert len(set(after.values())) == 3


def test_an_id_column_names_the_case_whatever_the_content():
    assert case_id({"id": " T-1 ", "review": "x"}) == "T-1"
    assert case_id({"id": "T-1", "review": "y"}) == "T-1"
    assert case_id({"a": 1, "b": 2}) == case_id({"b": 2, "a": 1})
    assert case_id({"id": "", "a": 1}) != case_id({"id": "", "a": 2})


# ---- matrix


def test_the_matrix_runs_every_combination_for_every_case(project, run_cli):
    spec = write_spec(
        project,
        matrix={"model": ["small", "large"], "temperature": [0, 0.5, 1]},
        cases=[{"id": "a", "review": "x"}, {"id": "b", "review": "y"}],
    )

    requests = render(run_cli, spec)

    assert len(requests) == 12
    assert requests[0]["id"] == "s/a/model=small,temperature=0"
    assert requests[-1]["id"] == "s/b/model=large,temperature=1"
    combos = {(r["body"]["model"], r["body"]["temperature"]) for r in requests}
    assert len(combos) == 6


def test_matrix_records_name_their_combination(project, run_cli):
    write_spec(project, matrix={"temperature": [0.1, 0.2]}, vars={"review": "ok"})

    result = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "-q")

    assert result.exit_code == 0
    records = list(read_records(latest_run(project)).values())
    assert sorted(r["id"] for r in records) == ["s/temperature=0.1", "s/temperature=0.2"]
    assert {r["matrix"]["temperature"] for r in records} == {0.1, 0.2}
    assert {r["request"]["temperature"] for r in records} == {0.1, 0.2}


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        ({"messages": [[]]}, "s.yaml:9:3: the matrix cannot vary 'messages'"),
        ({"vars": [{}]}, "s.yaml:9:3: the matrix cannot vary 'vars'"),
        ({"temprature": [1]}, "s.yaml:9:3: the matrix cannot vary 'temprature'"),
        (
            {"temperature": [0.5, 9]},
            "s.yaml:11:5: matrix temperature[1]: 9 is greater than the maximum of 2",
        ),
    ],
)
def test_matrix_mistakes(project, run_cli, matrix, expected):
    write_spec(project, vars={"review": "x"}, matrix=matrix)

    result = run_cli("validate", "specs")

    assert result.exit_code == 1
    assert "specs/" + expected in result.output


# ---- selection


def test_case_limit_and_sample_select_cases(project, run_cli):
    rows = "".join(f"c{i},text {i}\n" for i in range(50))
    write(project, "specs/data/many.csv", "id,review\n" + rows)
    spec = write_spec(project, cases="data/many.csv")

    assert [r["id"] for r in render(run_cli, spec, "--case", "c7", "--case", "c3")] == [
        "s/c3",
        "s/c7",
    ]
    assert len(render(run_cli, spec, "--limit", "5")) == 5
    sample = [r["id"] for r in render(run_cli, spec, "--sample", "5", "--sample-seed", "3")]
    again = [r["id"] for r in render(run_cli, spec, "--sample", "5", "--sample-seed", "3")]
    other = [r["id"] for r in render(run_cli, spec, "--sample", "5", "--sample-seed", "4")]
    assert sample == again and sample != other and len(set(sample)) == 5
    assert sample == sorted(sample, key=lambda i: int(i.split("/c")[1]))


def test_a_selection_that_matches_nothing_is_a_usage_error(project, run_cli):
    spec = write_spec(project, cases=[{"id": "a", "review": "x"}])

    result = run_cli("render", spec, "--case", "nope")

    assert result.exit_code == 2 and "no case of specs/s.yaml matches" in result.output


def test_limit_and_sample_together_are_refused(project, run_cli):
    spec = write_spec(project, cases=[{"id": "a", "review": "x"}])

    result = run_cli("render", spec, "--limit", "1", "--sample", "1")

    assert result.exit_code == 2 and "--limit or --sample" in result.output


def test_run_sends_only_the_selected_cases(project, run_cli):
    write_spec(project, cases=[{"id": k, "review": k} for k in "abcd"])

    result = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "--case", "c")

    assert result.exit_code == 0, result.output
    assert [r["case"]["id"] for r in read_records(latest_run(project)).values()] == ["c"]


def test_a_case_id_no_spec_has_is_refused_before_a_run_starts(project, run_cli):
    write_spec(project, cases=[{"id": k, "review": k} for k in "ab"])

    result = run_cli("run", "specs", "--provider", "offline", "--case", "a", "--case", "zz")

    assert result.exit_code == 2 and "no spec given has a case with id 'zz'" in result.output
    assert not (project / "runs").exists()  # nothing started, no empty run left behind


# ---- checks before sending


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.csv", "id,text\n1,x\n", "specs/data/a.csv:2: row 2 has no value for 'review'"),
        ("b.csv", "review\n", "specs/data/b.csv: has no cases"),
        ("c.csv", "", "specs/data/c.csv: has no cases"),
        ("d.csv", "id,review\n1,x\n2,y,z\n", "specs/data/d.csv:3: row 3 has 3 values but"),
        ("e.csv", "id,review,id\n1,x,2\n", "specs/data/e.csv:1: column 'id' appears twice"),
        ("f.csv", "id,review\n1,x\n1,y\n", "specs/data/f.csv:3: row 3 has the same id as row 2"),
        ("g.jsonl", '{"review": "x"}\n{"review": \n', "specs/data/g.jsonl:2: row 2 is not valid"),
        ("h.jsonl", '{"review": "x"}\n[1, 2]\n', "specs/data/h.jsonl:2: row 2 is not a mapping"),
        ("i.jsonl", '{"text": "x"}\n', "specs/data/i.jsonl:1: row 1 has no value for 'review'"),
        ("j.json", '{"review": "x"}', "specs/data/j.json:1:1: a data file must hold a list"),
        ("k.json", "[{]", "specs/data/k.json:1:3: is not valid JSON"),
        ("l.yaml", "- review: [unclosed\n", "specs/data/l.yaml:2:1: YAML syntax error"),
        ("m.csv", "review\nsame\nsame\n", "row 3 has the same content as row 2"),
        ("n.csv", "id;review\n1;x\n", "specs/data/n.csv:1: the header is one column, 'id;review'"),
    ],
)
def test_data_file_mistakes_name_the_file_and_row(project, run_cli, name, text, expected):
    write(project, f"specs/data/{name}", text)
    write_spec(project, cases=f"data/{name}")

    result = run_cli("validate", "specs")

    assert result.exit_code == 1
    assert expected in result.output, result.output
    assert "Traceback" not in result.output


def test_a_misspelt_data_file_name_suggests_the_file_beside_it(project, run_cli):
    write(project, "specs/data/tickets.csv", "id,review\n1,x\n")
    write_spec(project, cases="data/tikets.csv")

    result = run_cli("validate", "specs")

    assert result.exit_code == 1
    assert (
        "data file not found: data/tikets.csv (looked for specs/data/tikets.csv; "
        "did you mean 'data/tickets.csv'?)"
    ) in result.output


def test_inline_case_mistakes_point_into_the_spec(project, run_cli):
    write_spec(project, cases=[{"id": "a", "review": "x"}, {"id": "b"}])

    result = run_cli("validate", "specs")

    assert "specs/s.yaml:9:3: case 2 has no value for 'review'" in result.output


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        ("data/none.csv", "data file not found: data/none.csv"),
        ("../../outside.csv", "is outside the project folder"),
        ("../../absent.csv", "data file not found: ../../absent.csv (looked for /"),
        ("data/notes.txt", "must name a data file ending in .csv"),
    ],
)
def test_data_file_references_are_checked(project, run_cli, cases, expected):
    write(project, "specs/data/notes.txt", "x")
    (project.parent / "outside.csv").write_text("review\nx\n")
    write_spec(project, cases=cases)

    result = run_cli("validate", "specs")

    assert result.exit_code == 1 and expected in result.output


def test_a_data_file_is_read_lazily(project):
    path = write(project, "big.csv", "review\n" + "".join(f"row {i}\n" for i in range(1000)))
    cases = iter_cases(CaseSource(str(path), file=path), Selection(limit=2))

    assert [c.vars["review"] for c in cases] == ["row 0", "row 1"]


def test_resume_refuses_a_changed_data_file(project, run_cli):
    data = write(project, "specs/data/r.csv", "id,review\n1,x\n")
    write_spec(project, cases="data/r.csv")
    assert run_cli("run", "specs", "--provider", "offline", "--out", "runs", "-q").exit_code == 0
    run_dir = next((project / "runs").iterdir())
    data.write_text("id,review\n1,changed\n")

    result = run_cli("run", "--resume", run_dir)

    assert result.exit_code == 2 and "has changed since the run started" in result.output


# ---- base specs


BASE = """\
version: 1
model: base-model
temperature: 0.2
vars:
  tone: calm
  review: default review
messages:
  - role: system
    content: Be {{ tone }}.
"""


def test_a_spec_extends_a_base(project, run_cli):
    write(project, "specs/_base.yaml", BASE)
    spec = write(
        project,
        "specs/child.yaml",
        "version: 1\nextends: _base.yaml\ntemperature: 0.9\nvars:\n  tone: warm\n"
        "messages:\n  - role: user\n    content: '{{ review }}'\n",
    )

    (request,) = render(run_cli, spec)

    body = request["body"]
    assert body["model"] == "base-model" and body["temperature"] == 0.9
    assert body["messages"] == [
        {"role": "system", "content": "Be warm."},
        {"role": "user", "content": "default review"},
    ]


def test_the_name_is_not_inherited_and_bases_do_not_run_alone(project, run_cli):
    write(project, "specs/_base.yaml", "name: base\n" + BASE)
    write(project, "specs/one.yaml", "version: 1\nextends: _base.yaml\n")
    write(project, "specs/two.yaml", "version: 1\nextends: _base.yaml\n")

    result = run_cli("validate", "specs")

    assert result.exit_code == 0, result.output
    assert "2 specs valid" in result.stdout + result.output


def test_a_base_can_extend_another_base(project, run_cli):
    write(project, "specs/_root.yaml", BASE)
    write(project, "specs/_mid.yaml", "extends: _root.yaml\nmodel: mid-model\n")
    spec = write(project, "specs/leaf.yaml", "version: 1\nextends: _mid.yaml\n")

    (request,) = render(run_cli, spec)

    assert request["body"]["model"] == "mid-model"
    assert request["body"]["messages"][0]["content"] == "Be calm."


def test_a_mistake_in_the_base_is_reported_at_its_place_in_the_base(project, run_cli):
    write(
        project, "specs/_base.yaml", BASE.replace("Be {{ tone }}.", "Be {{ tone }.") + "top_p: 7\n"
    )
    write(project, "specs/child.yaml", "version: 1\nextends: _base.yaml\n")

    result = run_cli("validate", "specs")

    assert result.exit_code == 1
    assert "specs/_base.yaml:10:8: 'top_p' must be at most 1" in result.output, result.output


def test_a_template_mistake_in_the_base_points_into_the_base(project, run_cli):
    write(project, "specs/_base.yaml", BASE.replace("Be {{ tone }}.", "Be {{ tone }."))
    write(project, "specs/child.yaml", "version: 1\nextends: _base.yaml\n")

    result = run_cli("validate", "specs")

    assert "specs/_base.yaml:9:14: template syntax error" in result.output, result.output


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"specs/c.yaml": "version: 1\nextends: _none.yaml\n"}, "c.yaml:2:10: base spec not found"),
        (
            {"specs/c.yaml": "version: 1\nextends: ../../x.yaml\n"},
            "c.yaml:2:10: base spec not found: ../../x.yaml (looked for /",
        ),
        (
            {
                "specs/c.yaml": "version: 1\nextends: _a.yaml\n",
                "specs/_a.yaml": "extends: _b.yaml\n",
                "specs/_b.yaml": "extends: _a.yaml\n",
            },
            "_b.yaml:1:10: extends '_a.yaml', which extends this spec again (a loop)",
        ),
        (
            {"specs/c.yaml": "version: 1\nextends: _a.yaml\n", "specs/_a.yaml": "- a list\n"},
            "specs/_a.yaml:1:1: a base spec must be a mapping",
        ),
        (
            {"specs/c.yaml": "version: 1\n"},
            "c.yaml:1:1: the spec is missing the required key 'model'",
        ),
    ],
)
def test_base_spec_mistakes(project, run_cli, files, expected):
    for relative, text in files.items():
        write(project, relative, text)

    result = run_cli("validate", "specs/c.yaml")

    assert result.exit_code == 1
    assert expected in result.output, result.output


# ---- shared template parts


def test_includes_and_macros_come_from_the_templates_folder(project, run_cli):
    write(project, "templates/system.j2", "You are {{ tone }}.")
    write(project, "templates/macros.j2", "{% macro quote(t) %}> {{ t }}{% endmacro %}")
    spec = write_spec(
        project,
        vars={"tone": "kind", "review": "ok"},
        messages=[
            {"role": "system", "content": "{% include 'system.j2' %}"},
            {"role": "user", "content": "{% import 'macros.j2' as m %}{{ m.quote(review) }}"},
        ],
    )

    (request,) = render(run_cli, spec)

    assert contents([request]) == ["> ok"]
    assert request["body"]["messages"][0]["content"] == "You are kind."


@pytest.mark.parametrize(
    "name", ["../secret.txt", "../../secret.txt", "/etc/passwd", "sub/../../secret.txt"]
)
def test_an_include_cannot_leave_the_templates_folder(project, run_cli, name):
    write(project, "secret.txt", "TOP SECRET")
    write(project, "templates/ok.j2", "fine")
    spec = write_spec(project, messages=[{"role": "user", "content": f"{{% include '{name}' %}}"}])

    result = run_cli("render", spec)

    assert result.exit_code == 1
    assert "specs/s.yaml:5:12: template include not found" in result.output, result.output
    assert "TOP SECRET" not in result.output


def test_a_case_whose_template_fails_is_refused_before_anything_is_sent(project, run_cli):
    write_spec(
        project,
        messages=[{"role": "user", "content": "{{ review + 1 }}"}],
        cases=[{"id": "number", "review": 1}, {"id": "text", "review": "x"}],
    )

    result = run_cli("run", "specs", "--provider", "offline", "--out", "runs")

    assert result.exit_code == 1
    assert result.output.startswith(
        "specs/s.yaml:9:3: case 2 ('text') makes the template at specs/s.yaml:5:12 fail: "
        "TypeError: can only concatenate str"
    ), result.output
    assert not (project / "runs").exists()


def test_repeated_ids_are_found_far_apart_in_a_large_file(project, run_cli):
    rows = [f"c{i},text {i}\n" for i in range(20_000)]
    rows[18_999] = "c4,text again\n"
    write(project, "specs/data/big.csv", "id,review\n" + "".join(rows))
    write_spec(project, cases="data/big.csv")

    result = run_cli("validate", "specs")

    assert result.exit_code == 1
    expected = "specs/data/big.csv:19001: row 19001 has the same id as row 6 (case id 'c4')"
    assert expected in result.output, result.output


# ---- cases: {files: ...} stays in the project (issue 22.9)


@pytest.mark.parametrize(("target", "pattern"), [("/", "root/**/*.conf"), ("/usr", "usr/**/*")])
def test_a_files_pattern_never_follows_a_link_out_of_the_project(project, run_cli, target, pattern):
    """A pattern through a link to / walked /proc and ended in a traceback; through a link
    to /usr it walked all of it. The link is named, at the pattern's line, before any walk."""
    spec = write_spec(project, name="s", cases={"files": pattern})
    link = project / "specs" / pattern.split("/")[0]
    link.symlink_to(target)
    for command in ("validate", "run"):
        args = [command, spec, *(["--provider", "offline"] if command == "run" else [])]
        result = run_cli(*args)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert re.search(
            rf"specs/s.yaml:\d+:10: specs/{link.name} is a link out of the project, to {target}:",
            result.output,
        ), result.output


def test_a_files_pattern_follows_links_inside_the_project_once(project, run_cli):
    write(project, "specs/scans/a/one.txt", "1")
    write(project, "specs/scans/b/two.txt", "2")
    (project / "specs" / "scans" / "a" / "back").symlink_to(project / "specs" / "scans")
    (project / "specs" / "scans" / "b" / "dangling").symlink_to(project / "nowhere")
    spec = write_spec(project, cases={"files": "scans/**/*.txt"}, vars={"review": "r"})
    requests = render(run_cli, spec)
    paths = sorted(r["id"] for r in requests)
    assert paths[0].endswith("one.txt") and len(set(paths)) == len(paths)
    assert any(p.endswith("two.txt") for p in paths)
