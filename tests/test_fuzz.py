"""Property tests: no input file makes the loader, validator or renderer fail unexpectedly.

Random YAML text, byte mutations of a valid spec, random data structures dumped as YAML and
random Jinja fragments in message content go through ``runner/load.py``, ``validate_paths``
and ``render_request``. The only exceptions allowed out are the project's own (``RunnerError``
subclasses, which the CLI prints as ``file:line: message``), and ``runner validate`` on the
same files never shows a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.check.validate import validate_paths
from runner.errors import RunnerError
from runner.spec.load import load_yaml
from runner.spec.render import render_request

# RUNNER_FUZZ_EXAMPLES=5000 for a longer hunt; the normal suite keeps it short.
EXAMPLES = int(os.environ.get("RUNNER_FUZZ_EXAMPLES", "150"))

VALID = """\
version: 1
name: fuzz
model: openai/gpt-oss-120b
temperature: 0.2
max_completion_tokens: 50
vars:
  topic: tea
response_format:
  type: json_schema
  json_schema:
    name: answer
    strict: true
    schema:
      type: object
      properties:
        text: {type: string}
      required: [text]
      additionalProperties: false
tools:
  - type: function
    function:
      name: lookup
      parameters: {type: object, properties: {q: {type: string}}}
tool_choice: auto
messages:
  - role: system
    content: You answer in JSON.
  - role: user
    content: |
      Tell me about {{ topic }}.
"""

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check_file(path: Path, run_cli) -> None:
    """Load, validate and render ``path``; only RunnerErrors may come out, and no traceback."""
    with contextlib.suppress(RunnerError):
        load_yaml(path)
    validation = validate_paths([path])
    for spec in validation.specs:
        with contextlib.suppress(RunnerError):
            render_request(spec)
    result = run_cli("validate", path)
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output


@pytest.fixture
def spec_file(project: Path) -> Path:
    return project / "spec.yaml"


# ---- strategies

yaml_tokens = st.sampled_from(
    [
        "version: 1\n",
        "model: openai/gpt-oss-20b\n",
        "messages:\n",
        "  - role: user\n",
        "    content: hi\n",
        "- ",
        ": ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a ",
        "!!python/object ",
        "!!binary ",
        "<<: *a\n",
        "? ",
        "|\n",
        ">-\n",
        "---\n",
        "...\n",
        "#",
        "'",
        '"',
        "\t",
        "\n",
        "  ",
        "$ref: x.json\n",
        "{{ x }}",
        "{%",
        "null",
        "~",
        "1e999",
        "0x1F",
        "2026-01-01",
        "\ufeff",
        "\\u0000",
    ]
)
yaml_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(yaml_tokens, st.text(max_size=8)), max_size=40).map("".join),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_data = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=5),
    ),
    max_leaves=30,
)
spec_keys = st.sampled_from(
    [
        "version",
        "name",
        "model",
        "messages",
        "vars",
        "provider",
        "temperature",
        "response_format",
        "tools",
        "tool_choice",
        "extra_body",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "role",
        "content",
        "type",
        "json_schema",
        "schema",
        "function",
        "parameters",
        "$ref",
        "strict",
        "text",
        "base_url",
    ]
)
spec_like = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(spec_keys, children, max_size=6),
    ),
    max_leaves=40,
)

jinja_pieces = st.sampled_from(
    [
        "{{ topic }}",
        "{{ topic",
        "{{",
        "}}",
        "{%",
        "%}",
        "{% if topic %}",
        "{% endif %}",
        "{% for x in topic %}",
        "{% endfor %}",
        "{% set y = 1 %}",
        "{{ y }}",
        "{{ missing }}",
        "{{ topic.x }}",
        "{{ topic[0] }}",
        "{{ topic[99] }}",
        "{{ 1/0 }}",
        "{{ topic|int }}",
        "{{ topic|nofilter }}",
        "{{ topic|join(1) }}",
        "{{ range(3)|sum }}",
        "{{ ''.__class__ }}",
        "{{ topic.upper() }}",
        "{{ '%s' % topic }}",
        "{{ '{0}'.format(topic) }}",
        "{% include 'x' %}",
        "{% import 'x' as m %}",
        "{% extends 'x' %}",
        "{% macro m() %}{% endmacro %}",
        "{% raw %}",
        "{% endraw %}",
        "{#",
        "#}",
        "{{ (topic * 3)[::-1] }}",
        "{{ topic is defined }}",
        "{{ {'a': 1}.a }}",
        "{{ none.x }}",
        "{{ 10 ** 3 }}",
        " text ",
        "\n",
    ]
)
jinja_text = st.lists(st.one_of(jinja_pieces, st.text(max_size=5)), max_size=12).map("".join)


# ---- properties


@fuzz_settings
@given(text=yaml_text)
def test_random_yaml_text(spec_file, run_cli, text):
    spec_file.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_file(spec_file, run_cli)


@fuzz_settings
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255), st.sampled_from("sdi")),
        min_size=1,
        max_size=6,
    )
)
def test_byte_mutations_of_a_valid_spec(spec_file, run_cli, edits):
    data = bytearray(VALID.encode())
    for position, byte, how in edits:
        position %= max(len(data), 1)
        if how == "s":
            data[position] = byte
        elif how == "d":
            del data[position]
        else:
            data.insert(position, byte)
    spec_file.write_bytes(bytes(data))
    check_file(spec_file, run_cli)


@fuzz_settings
@given(data=st.one_of(json_data, spec_like))
def test_random_structures_dumped_as_yaml(spec_file, run_cli, data):
    spec_file.write_text(yaml.safe_dump(data, allow_unicode=True))
    check_file(spec_file, run_cli)


@fuzz_settings
@given(
    overrides=st.dictionaries(
        spec_keys,
        json_data,
        max_size=3,
    )
)
def test_a_valid_spec_with_random_values_for_known_keys(spec_file, run_cli, overrides):
    data = yaml.safe_load(VALID)
    data.update(overrides)
    spec_file.write_text(yaml.safe_dump(data, allow_unicode=True))
    check_file(spec_file, run_cli)


@fuzz_settings
@given(content=jinja_text, topic=json_data)
def test_random_jinja_in_message_content(spec_file, run_cli, content, topic):
    data = yaml.safe_load(VALID)
    data["vars"] = {"topic": topic}
    data["messages"][1]["content"] = content
    spec_file.write_text(yaml.safe_dump(data, allow_unicode=True))
    check_file(spec_file, run_cli)


# ---- hostile files, refused quickly with a message naming the file


def refused(project: Path, run_cli, path: Path, words: str) -> str:
    result = run_cli("validate", path)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stdout.startswith(f"{path.name}:"), result.stdout[:300]
    assert words in result.stdout, result.stdout[:300]
    return result.stdout


@pytest.mark.no_render_audit  # the bomb is the point; loading it again costs seconds
def test_billion_laughs_alias_bomb(project, run_cli):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        previous = chr(ord("a") + i - 1)
        name = chr(ord("a") + i)
        lines.append(f"{name}: &{name} [{','.join(['*' + previous] * 9)}]")
    path = project / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    refused(project, run_cli, path, "expands to more than")


def test_deeply_nested_document(project, run_cli):
    path = project / "deep.yaml"
    path.write_text("[" * 10_000 + "]" * 10_000 + "\n")
    refused(project, run_cli, path, "nest")


def test_deeply_nested_mappings(project, run_cli):
    path = project / "deep-map.yaml"
    path.write_text("{a: " * 5_000 + "1" + "}" * 5_000 + "\n")
    refused(project, run_cli, path, "nest")


def test_binary_file(project, run_cli):
    path = project / "binary.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    refused(project, run_cli, path, "binary")


def test_invalid_utf8_without_nul(project, run_cli):
    path = project / "latin1.yaml"
    path.write_bytes("version: 1\nmodel: caf\xe9\n".encode("latin-1"))
    refused(project, run_cli, path, "UTF-8")


def test_a_three_mib_file(project, run_cli):
    path = project / "huge.yaml"
    path.write_text("version: 1\n# " + "x" * (3 * 1024 * 1024) + "\n")
    refused(project, run_cli, path, "too large")


# ---- Outside input besides specs (issue 22.13): run directories, data files, images,
# cassettes and batch output files. The property: a clear error (a RunnerError, or a warning)
# or a correct result; never a traceback, a hang or a lost line.

OUTSIDE_EXAMPLES = int(os.environ.get("RUNNER_FUZZ_EXAMPLES", "20"))
outside_settings = settings(
    max_examples=OUTSIDE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

RUN_SPEC = """\
version: 1
name: ex
model: openai/gpt-oss-120b
messages:
  - role: user
    content: "Say {{ w }}"
cases:
  - {id: a, w: one}
  - {id: b, w: two}
expect:
  - contains: "o"
  - regex: "^\\\\[offline\\\\]"
"""

record_fields = st.sampled_from(
    [
        "id",
        "spec",
        "case",
        "vars",
        "matrix",
        "status",
        "output",
        "usage",
        "latency_ms",
        "expectations",
        "error",
        "request",
        "response",
        "stream",
        "judges",
        "http_status",
    ]
)
odd_lines = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    json_data.map(lambda d: json.dumps(d).encode()),
    st.just(b"[" * 5000),
    st.just(b'{"id": ' + b"[" * 5000),
    st.just(b'{"id": "ex/a", "note": "\xff\xfe"}'),
)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One offline run of two records, copied by each example."""
    from click.testing import CliRunner

    from runner.cli.main import cli

    project = tmp_path_factory.mktemp("runs")
    (project / "pyproject.toml").write_text("")
    (project / "specs").mkdir()
    (project / "specs" / "ex.yaml").write_text(RUN_SPEC)
    cwd = Path.cwd()
    os.chdir(project)
    try:
        ran = CliRunner().invoke(
            cli, ["run", "specs", "--provider", "offline", "--out", "runs", "--json"]
        )
    finally:
        os.chdir(cwd)
    assert ran.exit_code == 0, ran.output
    return project / json.loads(ran.stdout)["run_dir"]


def _is_record(line: bytes) -> bool:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and isinstance(value.get("id"), str)


@settings(outside_settings, max_examples=max(OUTSIDE_EXAMPLES // 2, 1))
@given(
    changes=st.lists(
        st.one_of(
            st.tuples(st.just("field"), st.integers(0, 1), record_fields, json_data),
            st.tuples(st.just("line"), st.integers(0, 2), odd_lines),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_hostile_run_directories(finished_run, tmp_path, run_cli, changes):
    """report, export, diff, show and score read any results.jsonl without a traceback, and
    score keeps every line that is not a record, byte for byte."""
    import shutil

    run = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(finished_run, run)
    lines = (run / "results.jsonl").read_bytes().splitlines(keepends=True)
    for change in sorted(changes, key=lambda c: c[0] != "field"):  # fields of records first
        if change[0] == "field":
            _, which, field, value = change
            record = json.loads(lines[which])
            record[field] = value
            lines[which] = (json.dumps(record) + "\n").encode()
        else:
            _, where, line = change
            lines.insert(min(where, len(lines)), line + b"\n")
    (run / "results.jsonl").write_bytes(b"".join(lines))
    unreadable = sorted(line for line in lines if not _is_record(line))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for args in (
            ("report", run, "--format", "md"),
            ("report", finished_run, run, "-o", tmp_path / "compare.html"),
            ("export", run, "-o", tmp_path / "rows.csv"),
            ("export", run, "-o", tmp_path / "cassette.jsonl"),
            ("diff", finished_run, run, "--json"),
            ("show", run),
            ("score", run, "--spec", finished_run.parent.parent / "specs" / "ex.yaml"),
        ):
            result = run_cli(*args)
            assert result.exit_code in (0, 1, 2), (args, result.output)
    after = (run / "results.jsonl").read_bytes().splitlines(keepends=True)
    assert sorted(line for line in after if not _is_record(line)) == unreadable


@outside_settings
@given(
    suffix=st.sampled_from([".csv", ".jsonl", ".json", ".yaml"]),
    text=st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        json_data.map(json.dumps),
        st.lists(
            st.sampled_from(["id,w\n", "a,1\n", '"x\n', ",,,\n", "\x00", "w\n", "\ufeff"]),
            max_size=8,
        ).map("".join),
    ),
)
def test_hostile_data_files(project, run_cli, suffix, text):
    data = project / f"rows{suffix}"
    data.write_bytes(text.encode("utf-8", "surrogatepass"))
    spec = project / "spec.yaml"
    spec.write_text(
        "version: 1\nname: d\nmodel: m\nmessages:\n  - role: user\n"
        f"    content: \"{{{{ w | default('') }}}}\"\ncases: rows{suffix}\n"
    )
    check_file(spec, run_cli)


@outside_settings
@given(
    head=st.sampled_from(
        [
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            b"GIF89a",
            b"RIFF\x00\x00\x00\x00WEBPVP8 ",
            b"\xff\xd8\xff",
            b"",
            b"BM",
        ]
    ),
    body=st.binary(max_size=80),
)
def test_hostile_images(project, run_cli, head, body):
    from runner.spec.images import NotAnImage, inspect_image

    (project / "img").mkdir(exist_ok=True)
    image = project / "img" / "x.png"
    image.write_bytes(head + body)
    try:
        info = inspect_image(image)
        assert info.size == len(head + body)
    except NotAnImage:
        pass
    spec = project / "spec.yaml"
    spec.write_text(
        "version: 1\nname: i\nmodel: m\nmessages:\n  - role: user\n    content:\n"
        "      - {type: text, text: look}\n"
        "      - {type: image_url, image_url: {path: img/x.png}}\n"
    )
    check_file(spec, run_cli)


@outside_settings
@given(lines=st.lists(odd_lines, min_size=1, max_size=5))
def test_hostile_cassettes(finished_run, tmp_path, run_cli, lines):
    """A cassette is refused at its bad line, or replayed; never a traceback."""
    cassette = tmp_path / "c.jsonl"
    exported = run_cli("export", finished_run, "-o", cassette)
    assert exported.exit_code == 0, exported.output
    good = cassette.read_bytes().splitlines(keepends=True)
    cassette.write_bytes(b"".join(good[:1] + [line + b"\n" for line in lines] + good[1:]))
    spec = finished_run.parent.parent / "specs" / "ex.yaml"
    result = run_cli("run", spec, "--replay", cassette, "--out", tmp_path / "runs", "--quiet")
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code == 2:
        assert f"{cassette}" in result.stderr, result.stderr


@outside_settings
@given(lines=st.lists(odd_lines, max_size=6), ids=st.lists(st.text(max_size=10), max_size=3))
def test_hostile_batch_output_files(tmp_path, lines, ids):
    """Every line of a batch output file with a text custom_id is found again; nothing else
    raises."""
    from runner.runs.batch import BatchIndex

    output = tmp_path / f"output-{len(list(tmp_path.iterdir()))}.jsonl"
    answers = [json.dumps({"custom_id": i, "response": {"status_code": 200}}) for i in ids]
    output.write_bytes(
        b"".join(line + b"\n" for line in lines) + "".join(a + "\n" for a in answers).encode()
    )
    submitted = BatchIndex(tmp_path / f"index-{output.stem}.sqlite")
    for custom_id in ids:
        submitted.assign(custom_id, 0)
    submitted.close()  # as at submit; the fetch opens it again
    index = BatchIndex(tmp_path / f"index-{output.stem}.sqlite")
    try:
        index.load_answers(0, [output])
        for custom_id in ids:
            found = index.lookup(custom_id)
            assert found is not None and found[1] is not None
    finally:
        index.close()
