"""Streamed requests: the event-stream decoder, the chunk assembler, and runs end to end.

The decoder and assembler are fed hand-written Groq- and OpenAI-style streams; runs go against
the local test server, whose streams (tests/stream_server.py) are framed independently of
runner's own encoder, and whose faults cover every way a stream goes wrong.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY, KEY_ENV, SENTIMENT, WEATHER_TOOL, read_records, run_args, write_spec
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner.send import offline
from runner.send.offline_stream import completion_chunks
from runner.send.stream import ChunkAssembler, Event, EventDecoder, read_stream

# --- the event-stream decoder ---------------------------------------------------------------


def decode(*pieces: bytes) -> list[Event]:
    decoder = EventDecoder()
    return [event for piece in pieces for event in decoder.feed(piece)]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_every_line_end_gives_the_same_events(end):
    text = b"data: one" + end + end + b"data: two" + end + end
    assert [e.data for e in decode(text)] == ["one", "two"]
    assert [e.data for e in decode(*[bytes([b]) for b in text])] == ["one", "two"]


def test_a_crlf_cut_between_its_cr_and_lf_is_one_line_end():
    assert [e.data for e in decode(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n")] == ["a", "b"]


def test_comments_fields_and_multi_line_data():
    text = (
        b"\xef\xbb\xbf: ping\n"
        b"event: message\nid: 7\nretry: 2500\ndata:first\ndata: second\n\n"
        b": keep-alive\n\n"
        b"data\n\n"
        b"unknown: field\nid: 8\ndata: third\n\n"
    )
    events = decode(text)
    assert events == [
        Event("first\nsecond", "message", "7", 2500),
        Event("", None, "7"),
        Event("third", None, "8"),
    ]


def test_a_cut_inside_a_utf8_character_or_a_field_name():
    text = 'data: {"content": "café ☕"}\n\n'.encode()
    for cut in range(1, len(text)):
        assert decode(text[:cut], text[cut:]) == [Event('{"content": "café ☕"}')]


def test_an_unfinished_event_at_the_end_is_dropped_and_reported():
    decoder = EventDecoder()
    assert decoder.feed(b"data: whole\n\ndata: half") == [Event("whole")]
    assert decoder.close() is True


# --- the chunk assembler, on provider-style streams -----------------------------------------

# Streams shaped as Groq (reasoning, x_groq id and usage) and OpenAI (parallel tool calls cut
# into pieces, stream_options usage chunk, obfuscation) send them.
STREAMS = Path(__file__).parent / "data" / "streams"

GROQ_STREAM = (STREAMS / "groq.sse").read_bytes()

OPENAI_STREAM = (STREAMS / "openai.sse").read_bytes()


def test_a_groq_stream_assembles_text_reasoning_usage_and_request_id():
    result = read_stream([GROQ_STREAM], 0.0)
    assert result.failure is None
    completion = result.completion
    assert completion["object"] == "chat.completion"
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello there!",
                "reasoning": "The user wants a greeting.",
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert completion["usage"]["completion_tokens"] == 9
    assert completion["x_groq"] == {"id": "req_01", "seed": 42}
    assert result.timing.chunks == 6


def test_an_openai_stream_merges_parallel_tool_calls_and_reads_the_usage_chunk():
    completion = read_stream([OPENAI_STREAM], 0.0).completion
    assert completion["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            },
        ],
    }
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["usage"] == {
        "prompt_tokens": 80,
        "completion_tokens": 30,
        "total_tokens": 110,
    }
    assert completion["service_tier"] == "default"
    assert "obfuscation" not in completion


def test_time_to_first_token_is_the_first_text_not_the_role_chunk():
    ticks = iter(range(100))
    pieces = [piece + b"\n\n" for piece in GROQ_STREAM.split(b"\n\n") if piece]
    result = read_stream(pieces, 0.0, clock=lambda: float(next(ticks)))
    # The role chunk is piece 0; the first reasoning token arrives in piece 1 (tick 0 is
    # taken by nothing else), and the stream ends at [DONE].
    assert result.timing.ttft_ms == 0.0
    assert result.timing.total_ms == 1000.0
    assert result.timing.output_tokens_per_s == 9.0


def stream_of(chunks: list[dict[str, Any]], end: bytes = b"\n", done: bool = True) -> bytes:
    body = b"".join(b"data: " + json.dumps(c).encode() + end + end for c in chunks)
    return body + (b"data: [DONE]" + end + end if done else b"")


BODIES = {
    "plain": {"model": "m", "messages": [{"role": "user", "content": "Tell me about café ☕."}]},
    "json_object": {
        "model": "m",
        "messages": [{"role": "user", "content": "Answer in JSON."}],
        "response_format": {"type": "json_object"},
    },
    "json_schema": {
        "model": "m",
        "messages": [{"role": "user", "content": "Rate it."}],
        "response_format": SENTIMENT,
    },
    "tools": {
        "model": "m",
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [WEATHER_TOOL],
        "n": 2,
    },
}


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(BODIES)),
    end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    include_usage=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
)
def test_cutting_a_stream_anywhere_never_changes_the_answer(name, end, include_usage, cuts):
    completion = offline.complete(BODIES[name])
    data = stream_of(completion_chunks(completion, include_usage, words=2), end)
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    result = read_stream(pieces, 0.0)
    assert result.failure is None
    assert result.completion == completion


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("include_usage", [False, True])
def test_offline_chunks_follow_the_official_chunk_schema(name, include_usage, openai_wire_schemas):
    validator = chunk_validator(openai_wire_schemas)
    for chunk in completion_chunks(offline.complete(BODIES[name]), include_usage):
        errors = [e.message for e in validator.iter_errors(chunk)]
        assert not errors, (chunk, errors)


def chunk_validator(schemas: dict) -> Draft202012Validator:
    """The official stream-chunk schema, with OpenAPI's ``nullable`` read as JSON Schema."""

    def nullable(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: nullable(v) for k, v in node.items()}
            if node.pop("nullable", False):
                if isinstance(node.get("type"), str):
                    node["type"] = [node["type"], "null"]
                if "enum" in node:
                    node["enum"] = [*node["enum"], None]
                if "$ref" in node:
                    node["anyOf"] = [{"$ref": node.pop("$ref")}, {"type": "null"}]
            return node
        return [nullable(v) for v in node] if isinstance(node, list) else node

    ref = "#/components/schemas/CreateChatCompletionStreamResponse"
    return Draft202012Validator({**nullable(copy.deepcopy(schemas)), "$ref": ref})


HI = b'data: {"id": "x", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (b'event: error\ndata: {"error": {"message": "overloaded"}}\n\n', "provider", "overloaded"),
        (b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n', "provider", "boom"),
        (b'data: {"id": "x", "choices": [], "x_groq": {"error": "cut"}}\n\n', "provider", "cut"),
        (b"data: {not json\n\n", "malformed", "not JSON"),
        (b"data: [1, 2]\n\n", "malformed", "not a JSON object"),
        (b"", "connection", "before its first chunk"),
        (
            HI,
            "connection",
            "before the answer was complete",
        ),
        (
            HI + b'data: {"id"',
            "connection",
            "in the middle of an event",
        ),
    ],
)
def test_a_stream_that_goes_wrong_is_a_failure_with_its_reason(body, kind, words):
    result = read_stream([body], 0.0)
    assert result.completion is None
    assert result.failure.kind == kind
    assert words in result.failure.message


def test_a_stream_without_done_is_whole_when_every_choice_has_finished():
    completion = offline.complete(BODIES["plain"])
    data = stream_of(completion_chunks(completion), done=False)
    assert read_stream([data], 0.0).completion == completion


def test_events_of_unknown_types_are_ignored():
    completion = offline.complete(BODIES["plain"])
    data = b"event: ping\ndata: {}\n\n" + stream_of(completion_chunks(completion))
    assert read_stream([data], 0.0).completion == completion


def test_the_assembler_reports_the_first_choice_text_as_it_comes():
    assembler, shown = ChunkAssembler(), []
    for chunk in completion_chunks(offline.complete(BODIES["plain"])):
        shown.append(assembler.add(chunk))
    assert "".join(shown) == assembler.result()["choices"][0]["message"]["content"]


# --- runs against the test server -----------------------------------------------------------


@pytest.fixture
def run_server(run_cli, openai_server, project, monkeypatch):
    """``runner run specs/`` against the test server; returns (result, records by id)."""
    monkeypatch.setenv(KEY_ENV, KEY)

    def run(*extra: str) -> tuple[Any, dict[str, dict]]:
        before = set((project / "runs").glob("*")) if (project / "runs").is_dir() else set()
        result = run_cli(
            *run_args(openai_server.base_url), "--backoff", "0.01", "--no-cache", *extra
        )
        made = sorted(set((project / "runs").glob("*")) - before)
        return result, read_records(made[-1]) if made else {}

    return run


TWO_CALLS = json.dumps(
    {
        "tool_calls": [
            {
                "id": f"call_{city}",
                "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
            }
            for city in ("Paris", "Oslo")
        ]
    }
)


def write_kinds(project: Path) -> None:
    write_spec(project, "plain")
    write_spec(project, "json", "Say hello in JSON.", response_format={"type": "json_object"})
    write_spec(project, "schema", "Rate this in JSON.", response_format=SENTIMENT)
    write_spec(project, "tools", "Weather in two cities (tools)?", tools=[WEATHER_TOOL])


@pytest.mark.parametrize("provider", [(), ("--provider", "groq")])
def test_streamed_answers_equal_the_non_streamed_ones(project, openai_server, run_server, provider):
    write_kinds(project)
    openai_server.plan(f"reply:{TWO_CALLS}", marker="(tools)")
    result, whole = run_server("--no-stream", *provider)
    assert result.exit_code == 0, result.output
    openai_server.plan(f"reply:{TWO_CALLS}", marker="(tools)")
    result, streamed = run_server("--stream", *provider)
    assert result.exit_code == 0, result.output

    assert set(streamed) == {"plain", "json", "schema", "tools"}
    for name, record in streamed.items():
        assert record["response"] == whole[name]["response"], name
        assert record["output"] == whole[name]["output"], name
        assert record["usage"] == whole[name]["usage"] and record["usage"]["total_tokens"] > 0
        assert whole[name]["stream"] is None
        assert record["stream"]["chunks"] > 2
        assert 0 <= record["stream"]["ttfb_ms"] <= record["stream"]["ttft_ms"]
        assert record["stream"]["ttft_ms"] <= record["stream"]["total_ms"]
    calls = streamed["tools"]["output"]["tool_calls"]
    assert [c["arguments"] for c in calls] == [{"city": "Paris"}, {"city": "Oslo"}]


def test_each_provider_gets_the_stream_fields_it_needs(
    project, openai_server, run_server, openai_request_validator
):
    write_spec(project, "alpha", stream=True)
    run_server()
    run_server("--provider", "groq")
    custom, groq = (r.body for r in openai_server.received)

    assert custom["stream"] is True and custom["stream_options"] == {"include_usage": True}
    assert groq["stream"] is True and "stream_options" not in groq  # Groq sends x_groq.usage
    for body in (custom, groq):
        openai_request_validator.validate(body)


def test_a_streamed_groq_body_is_accepted_by_the_groq_sdk(project, openai_server, run_server):
    import groq  # a dev dependency, for this conformance check

    write_spec(project, "alpha", stream=True, temperature=0.2, max_completion_tokens=64)
    _, records = run_server("--provider", "groq")
    (sent,) = (r.body for r in openai_server.received)

    client = groq.Groq(api_key=KEY, base_url=f"http://127.0.0.1:{openai_server.port}")
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(**sent)  # a TypeError for any unknown field
        if c.choices
    )
    assert text == records["alpha"]["output"]["content"]


def test_a_streamed_openai_body_is_accepted_by_the_openai_sdk(project, openai_server, run_server):
    openai = pytest.importorskip("openai")  # pip install -e '.[bench]'
    write_spec(project, "alpha", stream=True, temperature=0.2, max_completion_tokens=64)
    _, records = run_server()
    (sent,) = (r.body for r in openai_server.received)

    client = openai.OpenAI(api_key=KEY, base_url=openai_server.base_url)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(**sent)
        if c.choices
    )
    assert text == records["alpha"]["output"]["content"]


FRAMINGS = ["crlf", "cr", "comments", "multiline", "split", "close"]


@pytest.mark.parametrize("framing", FRAMINGS)
def test_every_framing_gives_the_same_answer(project, openai_server, run_server, framing):
    write_spec(project, "alpha", "Tell me about the café ☕ by the sea.")
    _, whole = run_server("--no-stream")
    openai_server.plan(f"stream_framing:{framing}")
    result, streamed = run_server("--stream")
    assert result.exit_code == 0, result.output
    assert streamed["alpha"]["response"] == whole["alpha"]["response"]


@pytest.mark.parametrize(
    ("fault", "kind", "words", "sent"),
    [
        ("stream_drop_after:3", "connection", "cut off", 1),
        ("stream_cut", "connection", "before the answer was complete", 1),
        ("stream_error_event", "provider", "overloaded", 1),
        ("stream_error_payload", "provider", "overloaded", 1),
        ("stream_bad_json", "malformed", "not JSON", 1),
    ],
)
def test_a_stream_failing_after_content_is_a_failed_record_never_a_second_answer(
    project, openai_server, run_server, fault, kind, words, sent
):
    write_spec(project, "alpha", "Tell me a long story about the sea and the mountains.")
    openai_server.plan(fault)
    result, records = run_server("--stream")

    assert result.exit_code == 1
    record = records["alpha"]
    assert record["status"] == "failed" and record["http_status"] == 200
    assert record["error"]["kind"] == kind and words in record["error"]["message"]
    assert openai_server.count == sent
    assert record["stream"]["chunks"] >= 1 and record["response"] is None
    if fault != "stream_bad_json":
        assert record["response_text"].startswith("[offline]")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "fault", ["stream_drop_before", "stream_error_first", "stream_stall", "503"]
)
def test_a_stream_failing_before_its_first_token_is_sent_again(
    project, openai_server, run_server, fault
):
    write_spec(project, "alpha")
    openai_server.slow_seconds = 3.0
    openai_server.plan(fault)
    # The idle timeout also bounds the wait for the headers: only the stall needs a short one,
    # and it is long enough that a busy machine does not make the good attempt miss it too
    # (at 0.3 s, the second attempt's headers came 0.31 s late under load: a third attempt).
    idle = "1.0" if fault == "stream_stall" else "30"
    result, records = run_server("--stream", "--idle-timeout", idle)

    assert result.exit_code == 0, result.output
    assert records["alpha"]["attempts"] == 2 and openai_server.count == 2
    assert records["alpha"]["stream"]["chunks"] > 2


def test_a_silent_stream_fails_with_the_idle_timeout_named(project, openai_server, run_server):
    write_spec(project, "alpha")
    openai_server.slow_seconds = 1.0
    openai_server.plan("stream_stall")
    result, records = run_server("--stream", "--idle-timeout", "0.2", "--retries", "0")

    assert result.exit_code == 1
    assert records["alpha"]["error"]["limit"] == "--idle-timeout"
    assert "--idle-timeout" in records["alpha"]["error"]["message"]


def test_a_stream_that_never_starts_names_the_idle_timeout_and_its_seconds(
    project, openai_server, run_server
):
    write_spec(project, "alpha")
    openai_server.slow_seconds = 1.0
    openai_server.plan("slow")  # not even the headers before the idle timeout
    result, records = run_server("--stream", "--idle-timeout", "0.2", "--retries", "0")

    assert result.exit_code == 1
    error = records["alpha"]["error"]
    assert error["limit"] == "--idle-timeout"
    assert error["message"].startswith(
        "the stream never started: no answer within 0.2 s of sending (--idle-timeout"
    )
    assert "read timeout" not in result.stderr


def test_a_stream_going_on_past_the_timeout_fails(project, openai_server, run_server):
    write_spec(project, "alpha", "Tell me a long story about the sea, the rivers and the hills.")
    openai_server.stream_delay = 0.05
    result, records = run_server("--stream", "--timeout", "0.3", "--retries", "0")

    assert result.exit_code == 1
    assert records["alpha"]["error"]["limit"] == "--timeout"
    assert "--timeout" in records["alpha"]["error"]["message"]


def test_a_server_ignoring_stream_gives_an_ordinary_record(project, openai_server, run_server):
    write_spec(project, "alpha")
    openai_server.plan("stream_ignored")
    result, records = run_server("--stream")

    assert result.exit_code == 0, result.output
    assert records["alpha"]["output"]["content"].startswith("[offline]")
    assert records["alpha"]["stream"]["chunks"] == 0


def test_a_stream_without_done_is_saved_whole(project, openai_server, run_server):
    write_spec(project, "alpha")
    openai_server.plan("stream_no_done")
    result, records = run_server("--stream")
    assert result.exit_code == 0, result.output
    assert records["alpha"]["status"] == "ok"


def test_cache_and_resume_keep_the_streamed_answer(project, openai_server, run_cli, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.delenv("RUNNER_CACHE_DIR", raising=False)
    write_spec(project, "alpha", stream=True)
    args = [*run_args(openai_server.base_url), "--json"]
    first = json.loads(run_cli(*args).stdout)
    second = json.loads(run_cli(*args).stdout)

    assert openai_server.count == 1 and second["cached"] == 1
    (a,) = read_records(Path(first["run_dir"])).values()
    (b,) = read_records(Path(second["run_dir"])).values()
    assert a["stream"] is not None and b["stream"] is None  # nothing was streamed the 2nd time
    assert b["response"] == a["response"] and b["cached"] is True
    manifest = json.loads((Path(first["run_dir"]) / "manifest.json").read_text())
    assert manifest["settings"]["stream"] is None


def test_a_single_streamed_request_shows_its_text_as_it_arrives(project):
    from runner.check.validate import load_spec
    from runner.providers.endpoints import ProviderOverride
    from runner.runs.execute import RunSettings, start_run

    spec = load_spec(write_spec(project, "alpha", "Tell me about the hills and the sea."))
    pieces: list[str] = []
    settings = RunSettings(provider=ProviderOverride("offline"), stream=True, cache="off")
    summary = start_run([spec], settings, project / "runs", text=pieces.append)

    (record,) = read_records(summary.run_dir).values()
    assert len(pieces) > 2
    assert "".join(pieces) == record["output"]["content"]
    assert record["stream"]["chunks"] == len(pieces) + 2  # and the role and finish chunks


def test_the_offline_example_run_streams(project, run_cli):
    write_spec(project, "alpha", stream=True)
    write_spec(project, "beta")
    result = run_cli("run", "specs", "--provider", "offline", "--out", "runs")
    assert result.exit_code == 0, result.output
    records = read_records(sorted((project / "runs").iterdir())[-1])
    assert records["alpha"]["stream"]["chunks"] > 2 and records["beta"]["stream"] is None
    assert records["alpha"]["request"]["stream"] is True


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
CHUNKISH = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON,
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": JSON,
                    "delta": st.fixed_dictionaries(
                        {},
                        optional={
                            "content": JSON,
                            "role": JSON,
                            "tool_calls": st.lists(
                                st.fixed_dictionaries(
                                    {}, optional={"index": JSON, "id": JSON, "function": JSON}
                                ),
                                max_size=2,
                            )
                            | JSON,
                        },
                    )
                    | JSON,
                    "finish_reason": JSON,
                    "logprobs": JSON,
                },
            ),
            max_size=2,
        )
        | JSON,
        "usage": JSON,
        "x_groq": JSON,
        "error": JSON,
    },
)


@settings(max_examples=100, deadline=None)
@given(
    chunks=st.lists(CHUNKISH | JSON, max_size=5),
    noise=st.binary(max_size=40),
    done=st.booleans(),
)
def test_no_stream_however_broken_makes_the_reader_raise(chunks, noise, done):
    data = stream_of(chunks, done=done) + noise
    result = read_stream([data[:7], data[7:]], 0.0)
    assert (result.completion is None) != (result.failure is None)


def test_resume_keeps_the_stream_option(project, openai_server, run_server, run_cli):
    write_spec(project, "alpha")
    openai_server.plan("stream_drop_after:3")
    result, records = run_server("--stream")
    assert result.exit_code == 1 and records["alpha"]["status"] == "failed"
    run_dir = sorted((project / "runs").iterdir())[-1]

    result = run_cli("run", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert [r.body.get("stream") for r in openai_server.received] == [True, True]
    assert read_records(run_dir)["alpha"]["stream"]["chunks"] > 2


def test_scoring_a_streamed_run_again_sees_the_same_requests(
    project, openai_server, run_server, run_cli
):
    write_spec(project, "alpha", stream=True, expect=[{"contains": "offline"}])
    write_spec(project, "beta")
    result, _ = run_server("--stream")
    assert result.exit_code == 0, result.output
    run_dir = sorted((project / "runs").iterdir())[-1]

    result = run_cli("score", run_dir, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prompt_changed"] == []


def test_on_a_terminal_a_single_streamed_answer_is_printed_as_it_arrives(project):
    import os
    import pty
    import subprocess
    import sys

    write_spec(project, "alpha", "Tell me about the hills and the sea.")
    main, child = pty.openpty()
    env = {**os.environ, "RUNNER_OFFLINE_CHUNK_DELAY": "0.01"}
    command = [sys.executable, "-m", "runner", "run", "specs", "--provider", "offline"]
    process = subprocess.Popen(
        [*command, "--stream", "--no-cache", "--out", "runs"],
        cwd=project,
        env=env,
        stdout=child,
        stderr=subprocess.PIPE,
    )
    os.close(child)
    shown = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        shown += data
    process.wait(timeout=30)
    os.close(main)

    (record,) = read_records(sorted((project / "runs").iterdir())[-1]).values()
    assert process.returncode == 0
    assert shown.decode().replace("\r\n", "\n") == record["output"]["content"] + "\n"
    piped = subprocess.run(
        [*command, "--stream", "--no-cache", "--out", "runs"],
        cwd=project,
        env=env,
        capture_output=True,
        check=True,
    )
    assert piped.stdout == b""  # not a terminal: the text is in the record only


def test_a_replayed_streamed_answer_is_the_assembled_completion_with_no_timing(
    project, openai_server, run_server, run_cli, monkeypatch
):
    write_spec(project, "alpha", stream=True)
    result, original = run_server()
    assert result.exit_code == 0, result.output
    run_dir = sorted((project / "runs").iterdir())[-1]
    assert run_cli("export", run_dir, "-o", "cassette.jsonl").exit_code == 0
    (line,) = (project / "cassette.jsonl").read_text().splitlines()
    assert json.loads(line)["response"] == original["alpha"]["response"]
    openai_server.stop()
    monkeypatch.delenv(KEY_ENV)

    result, replayed = run_server("--replay", "cassette.jsonl")

    assert result.exit_code == 0, result.output
    assert replayed["alpha"]["response"] == original["alpha"]["response"]
    assert original["alpha"]["stream"]["chunks"] > 2 and replayed["alpha"]["stream"] is None
