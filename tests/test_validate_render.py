"""``runner validate`` reports whatever ``runner render`` and ``runner run`` would refuse.

Explicit mistakes at their exact place (unknown filters and tests, imports of names a template
file does not define, broken included files, a case that makes a template fail), the example
specs, and a property over generated specs: when validate passes a spec, render never refuses
it. (``conftest.py`` also checks every valid spec any other test writes.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import without_codes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_audit import assert_valid_specs_render

from runner.check.validate import load_spec
from runner.errors import RenderError, SpecError
from runner.spec.render import render_requests

ROOT = Path(__file__).parent.parent
SPEC = """\
version: 1
model: openai/gpt-oss-20b
vars:
  name: Ada
  count: 3
messages:
  - role: user
    content: |
      Hello {{ name }}.
{content}
"""


def write(project: Path, content: str, files: dict[str, str] | None = None) -> Path:
    for name, text in (files or {}).items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    spec = project / "spec.yaml"
    spec.write_text(SPEC.format(content="\n".join("      " + line for line in content.split("\n"))))
    return spec


def problems(run_cli, spec: Path) -> list[str]:
    result = run_cli("validate", spec)
    assert result.exit_code == 1, result.output
    return without_codes(result.stdout).splitlines()


def test_an_unknown_filter_is_reported_at_its_line_with_the_closest_name(project, run_cli):
    spec = write(project, "Count: {{ count }}\nShout: {{ name | uper }}")

    assert problems(run_cli, spec) == [
        "spec.yaml:11:1: template uses the filter 'uper', which does not exist "
        "(did you mean 'upper'?)"
    ]
    assert run_cli("render", spec).exit_code == 1


def test_an_unknown_test_in_a_branch_never_taken_is_still_reported(project, run_cli):
    spec = write(project, "{% if count is evn %}even{% endif %}")

    assert problems(run_cli, spec) == [
        "spec.yaml:10:1: template uses the test 'evn', which does not exist (did you mean 'even'?)"
    ]


def test_a_filter_with_no_close_name_points_at_the_list(project, run_cli):
    spec = write(project, "{{ name | qqqq }}")

    [line] = problems(run_cli, spec)
    assert line.startswith("spec.yaml:10:1: template uses the filter 'qqqq', which does")
    assert "list-of-builtin-filters" in line


def test_importing_a_name_the_template_file_does_not_define(project, run_cli):
    macros = "{% macro greet(who) %}Hi {{ who }}{% endmacro %}\n{% set sign = 'A' %}\n"
    spec = write(
        project,
        "{% from 'macros.j2' import greet, farewell %}{{ greet(name) }}",
        {"templates/macros.j2": macros},
    )

    assert problems(run_cli, spec) == [
        "spec.yaml:10:1: 'macros.j2' defines no macro or variable named 'farewell' "
        "(it defines: greet, sign)"
    ]


def test_an_include_that_does_not_exist(project, run_cli):
    spec = write(project, "Fine.\n{% include 'missing.j2' %}")

    assert problems(run_cli, spec) == [
        "spec.yaml:11:1: template include not found: missing.j2 (looked for "
        "templates/missing.j2; includes are read from the project's templates/ folder: put the "
        "file there)"
    ]


def test_a_broken_included_file_is_reported_at_its_own_line(project, run_cli):
    spec = write(
        project,
        "{% include 'part.j2' %}",
        {"templates/part.j2": "line one\n{{ name | lowr }}\n{% if %}\n"},
    )

    assert problems(run_cli, spec) == [
        "templates/part.j2:3:1: template syntax error: Expected an expression, got 'end of "
        "statement block'"
    ]


def test_an_unknown_filter_in_an_included_file(project, run_cli):
    spec = write(
        project, "{% include 'part.j2' %}", {"templates/part.j2": "a\n{{ name | lowr }}\n"}
    )

    assert problems(run_cli, spec) == [
        "templates/part.j2:2:1: template uses the filter 'lowr', which does not exist "
        "(did you mean 'lower'?)"
    ]


def test_a_default_value_that_makes_the_template_fail(project, run_cli):
    spec = write(project, "{{ name + count }}")

    [line] = problems(run_cli, spec)
    assert line.startswith("spec.yaml:9:7: template error: TypeError: can only concatenate str")


def test_a_data_file_row_that_makes_the_template_fail(project, run_cli):
    (project / "data").mkdir()
    spec = project / "spec.yaml"
    spec.write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\ncases: data/rows.csv\n"
        "messages:\n  - {role: user, content: '{{ (n | int) // (n | int) }}'}\n"
    )
    (project / "data" / "rows.csv").write_text("id,n\na,4\nb,0\nc,2\n")

    assert problems(run_cli, spec) == [
        "data/rows.csv:3: case 3 ('b') makes the template at spec.yaml:5:27 fail: "
        "ZeroDivisionError: integer division or modulo by zero"
    ]
    run = run_cli("run", spec, "--provider", "offline", "--out", "runs")
    assert run.exit_code == 1 and not (project / "runs").exists()


def test_a_variable_given_on_the_command_line_counts_as_a_value(project, run_cli):
    spec = project / "spec.yaml"
    spec.write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\n"
        "messages:\n  - {role: user, content: 'Hi {{ who }}'}\n"
    )

    assert run_cli("validate", spec).exit_code == 1
    rendered = run_cli("render", spec, "--var", "who=Ada")
    assert rendered.exit_code == 0, rendered.output
    assert json.loads(rendered.stdout)["messages"][0]["content"] == "Hi Ada"
    run = run_cli("run", spec, "--var", "who=Ada", "--provider", "offline", "--out", "runs")
    assert run.exit_code == 0, run.output


def test_every_example_spec_renders(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert assert_valid_specs_render(ROOT / "specs") == len(
        list((ROOT / "specs").glob("[!_]*.yaml"))
    )


# ---- property: validate passes => render renders

NAMES = ["name", "count", "items", "missing"]
values = st.one_of(
    st.integers(-3, 3), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=3), st.none()
)
expressions = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(lambda n: f"{n} | {{}}"),
    st.tuples(
        st.sampled_from(NAMES),
        st.sampled_from(["+", "-", "//", "*", "~"]),
        st.sampled_from([*NAMES, "0", "2", "'s'"]),
    ).map(" ".join),
    st.sampled_from(NAMES).map(lambda n: f"{n}.upper()"),
    st.sampled_from(NAMES).map(lambda n: f"{n}[0]"),
)
filters = st.sampled_from(["upper", "length", "int", "first", "uper", "sum", "trim", "tojson"])
pieces = st.one_of(
    st.tuples(expressions, filters).map(lambda e: "{{ " + e[0].replace("{}", e[1]) + " }}"),
    st.sampled_from(NAMES).map(lambda n: f"{{% if {n} is even %}}e{{% endif %}}"),
    st.sampled_from(NAMES).map(lambda n: f"{{% if {n} is evn %}}e{{% endif %}}"),
    st.sampled_from(NAMES).map(lambda n: f"{{% for x in {n} %}}{{{{ x }}}}{{% endfor %}}"),
    st.sampled_from(["{% include 'part.j2' %}", "{% include 'nope.j2' %}"]),
    st.sampled_from(
        ["{% from 'm.j2' import greet %}{{ greet(1) }}", "{% from 'm.j2' import bye %}"]
    ),
    st.text(alphabet="ab {}%#", max_size=6),
)
spec_strategy = st.fixed_dictionaries(
    {
        "vars": st.dictionaries(st.sampled_from(NAMES[:3]), values, max_size=3),
        "cases": st.one_of(
            st.none(),
            st.lists(
                st.dictionaries(st.sampled_from(NAMES), values, max_size=4), min_size=1, max_size=3
            ),
        ),
        "template": st.lists(pieces, min_size=1, max_size=4).map(" ".join),
    }
)


@pytest.fixture(scope="module")
def generated_project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    (folder / "pyproject.toml").write_text("")
    (folder / "templates").mkdir()
    (folder / "templates" / "part.j2").write_text("part {{ name }}")
    (folder / "templates" / "m.j2").write_text("{% macro greet(x) %}hi {{ x }}{% endmacro %}")
    return folder


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(generated=spec_strategy)
def test_what_validate_passes_render_renders(generated_project, generated):
    data = {
        "version": 1,
        "model": "openai/gpt-oss-20b",
        "vars": generated["vars"],
        "messages": [{"role": "user", "content": generated["template"]}],
    }
    if generated["cases"] is not None:
        data["cases"] = generated["cases"]
    path = generated_project / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        spec = load_spec(path)
    except SpecError:
        return
    try:
        for _ in render_requests(spec):
            pass
    except RenderError as exc:
        raise AssertionError(
            f"validate passed but render refused: {exc}\n{path.read_text()}"
        ) from None
