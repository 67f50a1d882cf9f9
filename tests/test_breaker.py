"""A model whose requests all fail alike stops sending (runner/runs/breaker.py, issue 21.5).

Every run goes to the local test server, which counts what it receives: a run of 300 cases
with a wrong key, or a retired model, must send at most five requests however many workers it
has, leave the rest unsent for --resume, and say once what to fix.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml
from helpers import KEY, KEY_ENV, latest_run, read_records, run_args

from runner.providers.endpoints import Endpoint
from runner.runs.breaker import PENDING, Breaker, request_independent
from runner.send.transport import HttpResult

MODEL = "openai/gpt-oss-120b"
CASES = 300


def write_cases(project: Path, cases: int = CASES, **fields: object) -> None:
    spec = {
        "version": 1,
        "name": "many",
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello ({{ n }})."}],
        "cases": [{"id": f"c{i}", "n": i} for i in range(cases)],
        **fields,
    }
    (project / "specs").mkdir(exist_ok=True)
    (project / "specs" / "many.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def chat_requests(server) -> int:
    return sum(1 for r in server.received if r.path.endswith("/chat/completions"))


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def test_a_wrong_key_sends_at_most_five_requests_of_300(project, openai_server, run_cli, key):
    openai_server.api_key = "sk-the-right-one"
    write_cases(project)

    result = run_cli(*run_args(openai_server.base_url), "-c", "32", "--retries", "0")

    assert result.exit_code == 1, result.stderr
    assert chat_requests(openai_server) <= 5
    lines = [line for line in result.stderr.splitlines() if "failed alike" in line]
    assert len(lines) == 1, result.stderr  # one message, not one per request
    assert f"the API key in {KEY_ENV}" in lines[0] and "Invalid API Key" in lines[0]
    assert f"fix: put a valid key in the environment variable {KEY_ENV}" in lines[0]
    assert "once fixed, finish the run with: runner run --resume runs/" in result.stderr
    run_dir = latest_run(project)
    saved = read_records(run_dir)
    assert len(saved) <= 5 and all(r["http_status"] == 401 for r in saved.values())
    found = manifest(run_dir)
    assert found["status"] == "incomplete"
    assert found["counts"]["not_sent"] == CASES - len(saved)
    assert found["stopped"]["reason"] == "failing_alike"
    assert found["stopped"]["resume"] is True
    assert found["stopped"]["fix"] == f"put a valid key in the environment variable {KEY_ENV}"


def test_the_requests_not_sent_go_once_the_key_is_fixed(project, openai_server, run_cli, key):
    openai_server.api_key = "sk-the-right-one"
    write_cases(project, 40)
    assert run_cli(*run_args(openai_server.base_url), "-c", "8").exit_code == 1
    sent = chat_requests(openai_server)

    openai_server.api_key = KEY
    result = run_cli("run", "--resume", "latest")

    assert result.exit_code == 0, result.stderr
    records = read_records(latest_run(project))
    assert len(records) == 40 and all(r["status"] == "ok" for r in records.values())
    assert chat_requests(openai_server) == sent + 40  # the failed ones again, and the rest
    assert "stopped" not in manifest(latest_run(project))


def test_a_retired_model_sends_at_most_five_requests(project, openai_server, run_cli, key):
    openai_server.retired = {MODEL}
    write_cases(project)

    result = run_cli(*run_args(openai_server.base_url), "-c", "16", "--stream")

    assert result.exit_code == 1, result.stderr
    assert chat_requests(openai_server) <= 5
    assert f"{MODEL} is retired (HTTP 400 model_decommissioned)" in result.stderr
    assert f"fix: replace {MODEL}" in result.stderr
    assert "change the spec and start a new run" in result.stderr
    assert manifest(latest_run(project))["stopped"]["resume"] is False


def test_other_models_of_a_matrix_go_on(project, openai_server, run_cli, key):
    openai_server.retired = {"retired-model"}
    write_cases(project, 60, matrix={"model": ["retired-model", "fine-model"]})

    result = run_cli(*run_args(openai_server.base_url), "-c", "8")

    assert result.exit_code == 1, result.stderr
    records = read_records(latest_run(project))
    fine = [r for r in records.values() if r["matrix"]["model"] == "fine-model"]
    retired = [r for r in records.values() if r["matrix"]["model"] == "retired-model"]
    assert len(fine) == 60 and all(r["status"] == "ok" for r in fine)
    assert len(retired) <= 5
    bodies = [r.body for r in openai_server.received if r.body]
    assert sum(1 for b in bodies if b.get("model") == "retired-model") <= 5
    (stopped,) = manifest(latest_run(project))["stopped"]["models"]
    assert stopped["model"] == "retired-model" and stopped["code"] == "model_decommissioned"


def test_an_account_without_credit_is_neither_waited_for_nor_retried(
    project, openai_server, run_cli, key
):
    openai_server.plan(*["no_credit"] * CASES)
    write_cases(project, 100)

    result = run_cli(*run_args(openai_server.base_url), "-c", "8")

    assert result.exit_code == 1, result.stderr
    assert chat_requests(openai_server) <= 5
    assert "no credit left (HTTP 429 insufficient_quota)" in result.stderr


def test_failures_that_depend_on_the_request_never_stop_a_run(project, openai_server, run_cli, key):
    openai_server.plan(*["400"] * 30)
    write_cases(project, 30)

    result = run_cli(*run_args(openai_server.base_url), "-c", "8")

    assert result.exit_code == 1
    assert chat_requests(openai_server) == 30
    assert "failed alike" not in result.stderr


def test_an_answer_that_gets_through_lets_every_worker_send():
    """Once a model answered, the breaker holds nothing back: only a model with no answer yet,
    or whose latest answers failed alike, has at most PENDING requests in flight."""
    breaker = Breaker(threading.Event())
    endpoint = Endpoint("groq", "http://127.0.0.1:9/v1", "KEY")
    assert all(breaker.enter("m") for _ in range(PENDING))
    held = threading.Event()

    def one_more() -> None:
        breaker.enter("m")
        held.set()

    thread = threading.Thread(target=one_more, daemon=True)
    thread.start()
    assert not held.wait(0.3)  # no verdict yet: held back
    breaker.leave("m", endpoint, "m", HttpResult(200, {}, "{}", 1))
    assert held.wait(5)
    assert all(breaker.enter("m") for _ in range(20))  # cleared: as many as the run sends


@pytest.mark.parametrize(
    ("status", "body", "stops"),
    [
        (401, {"error": {"message": "Invalid API Key", "code": "invalid_api_key"}}, True),
        (403, {"error": {"message": "Forbidden"}}, True),
        (404, {"error": {"message": "no such model", "code": "model_not_found"}}, True),
        (400, {"error": {"message": "retired", "code": "model_decommissioned"}}, True),
        (429, {"error": {"message": "quota", "type": "insufficient_quota"}}, True),
        (400, {"error": {"message": "'messages' must contain at least one message"}}, False),
        (429, {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}, False),
        (500, {"error": {"message": "Internal"}}, False),
        (200, {"choices": []}, False),
    ],
)
def test_which_failures_are_request_independent(status, body, stops):
    result = HttpResult(status, {}, json.dumps(body), 1)
    assert (request_independent(result) is not None) == stops


def test_the_fix_names_the_catalogues_replacement():
    groq = Endpoint("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY")
    breaker = Breaker(threading.Event())
    retired = HttpResult(400, {}, json.dumps({"error": {"code": "model_decommissioned"}}), 1)
    for _ in range(3):
        assert breaker.enter("k")
        breaker.leave("k", groq, "llama-3.3-70b-versatile", retired)

    (refusal,) = breaker.refusals()

    assert refusal.fix() == ("replace llama-3.3-70b-versatile with openai/gpt-oss-120b in the spec")
    assert breaker.stopped("k") and not breaker.enter("k")


def test_a_model_the_endpoint_does_not_know_gets_the_closest_id():
    groq = Endpoint("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY")
    breaker = Breaker(threading.Event())
    missing = HttpResult(404, {}, json.dumps({"error": {"code": "model_not_found"}}), 1)
    for _ in range(3):
        breaker.enter("k")
        breaker.leave("k", groq, "openai/gpt-oss-12b", missing)

    (refusal,) = breaker.refusals()

    assert "did you mean openai/gpt-oss-120b?" in refusal.fix()


def test_the_python_api_raises_run_refused(project, openai_server, key):
    import runner

    openai_server.api_key = "sk-the-right-one"
    write_cases(project, 50)

    with pytest.raises(runner.RunRefused, match=f"fix: put a valid key in .*{KEY_ENV}"):
        runner.run_specs("specs", base_url=openai_server.base_url, api_key_env=KEY_ENV, out="runs")

    assert chat_requests(openai_server) <= 5


def test_a_streams_first_text_clears_its_model_before_the_answer_ends(
    project, openai_server, run_cli, key
):
    """Streams of a slow model: the first text of one clears the model, so all 8 are sent
    before any of them has ended (not 5, then the rest after the first whole answer)."""
    openai_server.stream_delay = 0.25
    openai_server.content_words = 16  # each answer takes about 4 s to stream
    write_cases(project, 8)

    result = run_cli(*run_args(openai_server.base_url), "-c", "8", "--stream")

    assert result.exit_code == 0, result.stderr
    records = read_records(latest_run(project)).values()
    assert max(r["started_at"] for r in records) < min(r["finished_at"] for r in records)
