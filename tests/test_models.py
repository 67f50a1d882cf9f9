"""runner validate against the model catalogue (runner/check/models.py): retired, deprecated
and unknown models, and requests a model cannot serve (issue 21.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.providers.catalogue import GROQ, Model

SAY = "messages:\n  - role: user\n    content: Say hello.\n"


def validate(run_cli, text: str, *args: str) -> tuple[int, list[str]]:
    Path("spec.yaml").write_text("version: 1\n" + text)
    result = run_cli("validate", "spec.yaml", *args)
    return result.exit_code, [line for line in result.stdout.splitlines() if "spec.yaml:" in line]


def test_a_retired_model_is_an_error_naming_its_replacement(project, run_cli):
    code, lines = validate(run_cli, "model: llama-3.1-8b-instant\n" + SAY)
    assert code == 1
    assert lines == [
        "spec.yaml:2:8: groq retired the model 'llama-3.1-8b-instant' on 2026-08-16: every "
        "request to it fails (groq recommends openai/gpt-oss-20b; write: model: "
        "openai/gpt-oss-20b) [retired-model]"
    ]


def test_a_retired_model_in_a_matrix_is_reported_at_its_place(project, run_cli):
    text = (
        "model: openai/gpt-oss-20b\nmatrix:\n  model: [openai/gpt-oss-120b, mixtral-8x7b-32768]\n"
    )
    code, lines = validate(run_cli, text + SAY)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("spec.yaml:4:32: groq retired the model")
    assert "recommends openai/gpt-oss-120b" in lines[0]


@pytest.mark.no_render_audit  # the audit runs after the table is put back
def test_a_deprecated_model_is_a_warning_with_its_shutdown_date(project, run_cli, monkeypatch):
    old = Model("old/model", "deprecated", 8192, 1024, shutdown="2027-01-15",
                replacement="openai/gpt-oss-20b")  # fmt: skip
    monkeypatch.setitem(GROQ.models, old.id, old)  # type: ignore[index]
    code, lines = validate(run_cli, "model: old/model\n" + SAY)
    assert code == 0
    assert lines == [
        "spec.yaml:2:8: warning: the model 'old/model' is deprecated: groq shuts it down on "
        "2027-01-15 (move to openai/gpt-oss-20b before then) [deprecated-model]"
    ]


def test_an_unknown_model_is_a_warning_with_the_closest_ids(project, run_cli):
    code, lines = validate(run_cli, "model: openai/gpt-oss-21b\n" + SAY)
    assert code == 0
    assert len(lines) == 1 and "[unknown-model]" in lines[0]
    assert "did you mean 'openai/gpt-oss-20b'?" in lines[0]


def test_a_slip_of_a_retired_id_names_it_and_its_replacement(project, run_cli):
    code, lines = validate(run_cli, "model: llama-3.3-70b-versatle\n" + SAY)
    assert code == 0
    assert len(lines) == 1 and "[unknown-model]" in lines[0]
    assert (
        "did you mean 'llama-3.3-70b-versatile'? groq retired that model on 2026-08-16 and "
        "recommends openai/gpt-oss-120b: write: model: openai/gpt-oss-120b"
    ) in lines[0]


def test_a_project_can_silence_unknown_models(project, run_cli):
    Path("runner.yaml").write_text("version: 1\nsilence: [unknown-model]\n")
    assert validate(run_cli, "model: brand-new-model\n" + SAY) == (0, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model: openai/gpt-oss-20b\nmessages:\n  - role: user\n    content:\n"
            "      - {type: image_url, image_url: {url: 'https://example.com/a.png'}}\n",
            "spec.yaml:6:9: 'openai/gpt-oss-20b' takes no images, but this message sends one",
        ),
        (
            "model: qwen/qwen3.8-27b\nresponse_format:\n  type: json_schema\n  json_schema:\n"
            "    name: x\n    strict: true\n    schema: {type: object, properties: {}, "
            "additionalProperties: false}\n" + SAY,
            "spec.yaml:7:13: 'qwen/qwen3.8-27b' does not take strict: true",
        ),
        (
            "model: openai/gpt-oss-120b\nreasoning_effort: none\n" + SAY,
            "spec.yaml:3:19: 'openai/gpt-oss-120b' takes reasoning_effort low, medium, high,",
        ),
        (
            "model: qwen/qwen3.8-27b\nmax_completion_tokens: 20000\n" + SAY,
            "spec.yaml:3:24: 'qwen/qwen3.8-27b' writes at most 16,384 completion tokens",
        ),
        (
            "model: openai/gpt-oss-20b\nmatrix:\n  max_completion_tokens: [100, 70000]\n" + SAY,
            "spec.yaml:4:32: 'openai/gpt-oss-20b' writes at most 65,536 completion tokens",
        ),
    ],
    ids=["images", "strict", "reasoning-effort", "max-tokens", "matrix-max-tokens"],
)
def test_a_request_the_model_cannot_serve_is_an_error(project, run_cli, text, expected):
    code, lines = validate(run_cli, text)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert lines[0].endswith("[model-capability]")


@pytest.mark.no_render_audit  # the audit runs after the table is put back
def test_reasoning_effort_on_a_model_without_reasoning(project, run_cli, monkeypatch):
    plain = Model("plain/model", "production", 8192, 1024, input_price=1, output_price=1)
    monkeypatch.setitem(GROQ.models, plain.id, plain)  # type: ignore[index]
    code, lines = validate(run_cli, "model: plain/model\nreasoning_effort: low\n" + SAY)
    assert code == 1
    assert "'plain/model' takes no reasoning_effort" in lines[0]


def test_a_provider_with_its_own_base_url_is_not_checked(project, run_cli):
    provider = "provider: {name: my-proxy, base_url: 'http://127.0.0.1:9/v1'}\n"
    assert validate(run_cli, "model: llama-3.3-70b-versatile\n" + provider + SAY) == (0, [])


def test_the_command_line_provider_decides_which_table(project, run_cli):
    Path("spec.yaml").write_text("version: 1\nmodel: gpt-5-mini\n" + SAY)
    from runner import validate_specs

    groq = validate_specs("spec.yaml")
    assert [p.code for p in groq.problems] == ["unknown-model"]
    assert validate_specs("spec.yaml", provider="openai").problems == []
    Path("spec.yaml").write_text("version: 1\nmodel: llama-3.3-70b-versatile\n" + SAY)
    assert not validate_specs("spec.yaml").ok
    assert validate_specs("spec.yaml", base_url="http://127.0.0.1:9/v1").ok
    assert validate_specs("spec.yaml", provider="offline").ok


def test_runner_models_prints_the_catalogue_with_its_source(run_cli):
    result = run_cli("models", "--provider", "groq")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "groq: as of 2026-12-08, from https://console.groq.com/docs/models; Batch API 50% off"
    )
    row = next(line for line in lines if line.strip().startswith("openai/gpt-oss-20b "))
    assert row.split()[1:6] == ["production", "131,072", "65,536", "0.075", "0.30"]
    assert "  llama-3.3-70b-versatile on 2026-08-16 -> openai/gpt-oss-120b" in lines


def test_runner_models_json_has_every_model(run_cli):
    import json

    result = run_cli("models", "--json")
    providers = {doc["provider"]: doc for doc in json.loads(result.stdout)}
    assert set(providers) == {"groq", "openai"}
    ids = {m["id"] for m in providers["groq"]["models"]}
    assert {"openai/gpt-oss-20b", "gemma2-9b-it", "qwen/qwen3.8-27b"} <= ids


def test_runner_models_online_shows_what_differs(openai_server, run_cli, monkeypatch):
    from helpers import KEY, KEY_ENV

    openai_server.api_key = KEY
    openai_server.models = ["openai/gpt-oss-20b", "brand/new-model"]
    monkeypatch.setenv(KEY_ENV, KEY)
    args = ["--provider", "groq", "--base-url", openai_server.base_url, "--api-key-env", KEY_ENV]
    result = run_cli("models", "--online", *args)
    assert result.exit_code == 0, result.output
    assert "  listed, not in the catalogue: brand/new-model" in result.stdout
    not_listed = next(x for x in result.stdout.splitlines() if "in the catalogue, not listed" in x)
    assert "openai/gpt-oss-120b" in not_listed and "openai/gpt-oss-20b" not in not_listed

    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-000000000000")
    refused = run_cli("models", "--online", *args)
    assert refused.exit_code != 0
    assert "HTTP 401: Invalid API Key" in refused.output


def test_validate_online_checks_each_model_against_the_live_list(
    project, openai_server, run_cli, monkeypatch
):
    from helpers import KEY, KEY_ENV

    openai_server.models = ["openai/gpt-oss-20b"]
    monkeypatch.setenv(KEY_ENV, KEY)
    text = (
        "model: openai/gpt-oss-20b\nmatrix:\n  model: [openai/gpt-oss-20b, openai/gpt-oss-120b]\n"
    )
    Path("spec.yaml").write_text("version: 1\n" + text + SAY)
    online = ["--online", "--base-url", openai_server.base_url, "--api-key-env", KEY_ENV]
    result = run_cli("validate", "spec.yaml", *online)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "spec.yaml:4:31: custom does not list the model 'openai/gpt-oss-120b' "
        f"(GET {openai_server.base_url}/models) (pick one it lists: runner models --online shows "
        "them) [model-not-served]"
    ]
    assert run_cli("validate", "spec.yaml").exit_code == 0  # offline: the catalogue only
