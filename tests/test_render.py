"""Rendering: exact request bodies, variables, and a sandbox that hostile templates cannot leave."""

from __future__ import annotations

import json

import pytest

SPEC = """\
version: 1
name: r
model: qwen/qwen3.8-27b
temperature: 0.2
seed: 1
extra_body:
  service_tier: flex
vars:
  topic: git
  n: 3
messages:
  - role: system
    content: You are terse.
  - role: user
    content:
      - type: text
        text: "List {{ n }} facts about {{ topic }}."
      - type: image_url
        image_url: {url: "https://example.com/a.png"}
"""


def write(project, text=SPEC, name="spec.yaml"):
    (project / name).write_text(text)
    return name


def render(run_cli, *args):
    result = run_cli("render", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_body_is_the_api_request(project, run_cli):
    body = render(run_cli, write(project))
    assert body == {
        "model": "qwen/qwen3.8-27b",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "List 3 facts about git."},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            },
        ],
        "temperature": 0.2,
        "seed": 1,
        "service_tier": "flex",
    }


def test_body_matches_the_official_request_schema(project, run_cli, openai_request_validator):
    body = render(run_cli, write(project))
    openai_request_validator.validate(body)


def test_command_line_vars_override_spec_and_file(project, run_cli):
    (project / "vars.yaml").write_text("topic: yaml\nn: 5\n")
    body = render(run_cli, write(project), "--vars-file", "vars.yaml", "--var", "n=2")
    assert body["messages"][1]["content"][0]["text"] == "List 2 facts about yaml."


def test_bad_var_syntax_is_a_usage_error(project, run_cli):
    result = run_cli("render", write(project), "--var", "novalue")
    assert result.exit_code == 2
    assert result.stderr == "error: --var takes KEY=VALUE, got 'novalue'\n"


def test_include_from_templates_folder(project, run_cli):
    (project / "templates").mkdir()
    (project / "templates" / "persona.j2").write_text("You are a {{ role }}.")
    spec = SPEC.replace("content: You are terse.", "content: \"{% include 'persona.j2' %}\"")
    spec = spec.replace("  n: 3", "  n: 3\n  role: pirate")
    body = render(run_cli, write(project, spec))
    assert body["messages"][0]["content"] == "You are a pirate."


HOSTILE = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ topic.__class__ }}",
    "{{ '{0.__class__}'.format(topic) }}",
    "{{ lipsum.__globals__ }}",
    "{% include '../spec.yaml' %}",
    "{% include '/etc/passwd' %}",
    "{{ range(10**9) | list }}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_templates_fail_cleanly(project, run_cli, template):
    (project / "templates").mkdir()
    spec = SPEC.replace("content: You are terse.", f"content: {json.dumps(template)}")
    write(project, spec)
    result = run_cli("render", "spec.yaml")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("spec.yaml:13:14: ")
    assert "Traceback" not in result.stderr
    assert "uid=" not in result.stderr and "root:" not in result.stderr


def test_undefined_attribute_is_an_error_not_empty_text(project, run_cli):
    spec = SPEC.replace("content: You are terse.", 'content: "{{ topic.missing }}"')
    write(project, spec)
    result = run_cli("render", "spec.yaml")
    assert result.exit_code == 1
    assert result.stderr.startswith("spec.yaml:13:14: template error: 'str object' has no ")


def test_invalid_spec_is_not_rendered(project, run_cli):
    write(project, SPEC.replace("temperature: 0.2", "temperature: 9"))
    result = run_cli("render", "spec.yaml")
    assert result.exit_code == 1
    assert result.stderr == "spec.yaml:4:14: 'temperature' must be at most 2 (got 9)\n"


def test_schema_command_prints_the_published_schema(run_cli):
    from pathlib import Path

    result = run_cli("schema")
    published = Path(__file__).parent.parent / "schemas" / "spec.schema.json"
    assert json.loads(result.stdout) == json.loads(published.read_text())


@pytest.mark.parametrize("name", ["haiku", "extract-contact", "review-sentiment", "weather-tools"])
def test_examples_render_to_valid_requests(run_cli, openai_request_validator, name):
    from pathlib import Path

    spec = Path(__file__).parent.parent / "specs" / f"{name}.yaml"
    openai_request_validator.validate(render(run_cli, str(spec)))
