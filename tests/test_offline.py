"""The offline provider: real wire shape, valid structured outputs and tool calls, determinism."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner.send.instances import instance_for
from runner.send.offline import complete, request_seed

USER = {"role": "user", "content": "What is the capital of France? Answer briefly."}


@pytest.fixture(scope="module")
def response_validator(openai_wire_schemas: dict) -> Draft202012Validator:
    ref = "#/components/schemas/CreateChatCompletionResponse"
    return Draft202012Validator({**openai_wire_schemas, "$ref": ref})


def assert_wire_shape(response: dict, validator: Draft202012Validator) -> None:
    """Validate against OpenAI's official response schema.

    OpenAI's schema lists ``message.refusal`` as required, but Groq's assistant messages have
    no refusal field and the offline provider mimics Groq, so a copy gets ``refusal: None``
    before validating; everything else must match the official schema as is.
    """
    patched = copy.deepcopy(response)
    for choice in patched["choices"]:
        choice["message"].setdefault("refusal", None)
    errors = [e.message for e in validator.iter_errors(patched)]
    assert not errors, errors


def body_for(schema: Any, **extra: Any) -> dict:
    return {
        "model": "openai/gpt-oss-120b",
        "messages": [USER],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": schema, "strict": False},
        },
        **extra,
    }


def assert_valid(instance: Any, schema: Any) -> None:
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, (instance, errors)


# --- plain chat ----------------------------------------------------------------------------


def test_plain_chat_has_the_real_wire_shape(response_validator):
    response = complete({"model": "openai/gpt-oss-20b", "messages": [USER]})
    assert_wire_shape(response, response_validator)
    assert response["object"] == "chat.completion"
    assert response["model"] == "openai/gpt-oss-20b"
    assert response["system_fingerprint"] == "offline"
    assert response["id"].startswith("offline-") and len(response["id"]) == len("offline-") + 24
    (choice,) = response["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "[offline] " + USER["content"]}
    assert "refusal" not in choice["message"]  # Groq's messages have none


def test_content_parts_and_the_last_user_message():
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "describe"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "text", "text": "this picture"},
            ],
        },
    ]
    content = complete({"model": "m", "messages": messages})["choices"][0]["message"]["content"]
    assert content == "[offline] describe this picture"


def test_long_messages_are_cut_to_200_characters():
    content = complete({"model": "m", "messages": [{"role": "user", "content": "x" * 1000}]})
    assert content["choices"][0]["message"]["content"] == "[offline] " + "x" * 200


def test_usage_counts_tokens_and_has_groq_timings():
    usage = complete({"model": "m", "messages": [{"role": "user", "content": "a" * 40}]})["usage"]
    assert usage["prompt_tokens"] == 40 // 4 + 1
    assert usage["completion_tokens"] == len("[offline] " + "a" * 40) // 4 + 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    for field in ("queue_time", "prompt_time", "completion_time", "total_time"):
        assert usage[field] == 0.0 and isinstance(usage[field], float)


def test_json_object_mode(response_validator):
    response = complete({**body_for({}), "response_format": {"type": "json_object"}})
    assert_wire_shape(response, response_validator)
    content = json.loads(response["choices"][0]["message"]["content"])
    assert isinstance(content, dict) and content["answer"].startswith("[offline]")


def test_n_gives_that_many_choices(response_validator):
    response = complete({"model": "m", "messages": [USER], "n": 3})
    assert_wire_shape(response, response_validator)
    assert [c["index"] for c in response["choices"]] == [0, 1, 2]


# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["max_completion_tokens", "max_tokens"])
def test_token_limit_truncates_with_finish_reason_length(key, response_validator):
    response = complete({"model": "m", "messages": [USER], key: 3})
    assert_wire_shape(response, response_validator)
    (choice,) = response["choices"]
    assert choice["finish_reason"] == "length"
    assert ("[offline] " + USER["content"]).startswith(choice["message"]["content"])
    assert response["usage"]["completion_tokens"] <= 3


def test_a_generous_limit_changes_nothing():
    choice = complete({"model": "m", "messages": [USER], "max_completion_tokens": 1000})
    assert choice["choices"][0]["finish_reason"] == "stop"
    assert choice["choices"][0]["message"]["content"] == "[offline] " + USER["content"]


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("capital", "[offline] What is the "),
        (["France", "is"], "[offline] What "),  # the earliest match wins, not the first listed
        (["\n\n", "zzz"], "[offline] " + USER["content"]),
    ],
)
def test_stop_sequences(stop, expected):
    choice = complete({"model": "m", "messages": [USER], "stop": stop})["choices"][0]
    assert choice["message"]["content"] == expected
    assert choice["finish_reason"] == "stop"


def test_json_output_is_truncated_too_like_a_real_model():
    body = body_for({"type": "object", "properties": {"text": {"type": "string"}}})
    choice = complete({**body, "max_completion_tokens": 2})["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"]) <= 7


# --- determinism -------------------------------------------------------------------------


def test_same_body_same_bytes():
    body = body_for({"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}})
    first = json.dumps(complete(body), sort_keys=True)
    assert json.dumps(complete(copy.deepcopy(body)), sort_keys=True) == first


def test_different_bodies_have_different_ids():
    ids = {
        complete({"model": "m", "messages": [USER]})["id"],
        complete({"model": "m", "messages": [USER], "temperature": 0.5})["id"],
        complete({"model": "other", "messages": [USER]})["id"],
    }
    assert len(ids) == 3


# --- structured outputs --------------------------------------------------------------------

NODE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
    },
    "required": ["name", "children"],
    "additionalProperties": False,
}

SCHEMAS: dict[str, Any] = {
    "nested objects": {
        "type": "object",
        "properties": {
            "person": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "address": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                        "required": ["city"],
                    },
                },
                "required": ["name", "address"],
            }
        },
        "required": ["person"],
    },
    "array with minItems": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 5}
        },
    },
    "enums": {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
            "stars": {"enum": [1, 2, 3, 4, 5]},
            "mixed": {"type": "integer", "enum": ["one", 2, True]},
        },
        "required": ["sentiment", "stars", "mixed"],
    },
    "formats": {
        "type": "object",
        "properties": {
            name: {"type": "string", "format": name}
            for name in ("date", "date-time", "time", "email", "uri", "uuid", "ipv4", "ipv6")
        },
    },
    "patterns": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
            "sku": {"type": "string", "pattern": r"^(ab|cd)+_[0-9a-f]{2,}x?$"},
            "slug": {"type": "string", "pattern": r"^[a-z][a-z0-9-]*$", "minLength": 12},
            "not_digits": {"type": "string", "pattern": r"^[^0-9\s]{5}$"},
            "unanchored": {"type": "string", "pattern": "needle"},
            "phone": {"type": "string", "pattern": r"^\+?\d{1,3}[ .-]?\(\d{3}\) \d{3}-\d{4}$"},
        },
        "required": ["code", "sku", "slug", "not_digits", "unanchored", "phone"],
    },
    "string lengths": {
        "type": "object",
        "properties": {
            "short": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 50},
            "exact": {"type": "string", "minLength": 7, "maxLength": 7},
            "const": {"const": "fixed"},
        },
    },
    "numeric bounds": {
        "type": "object",
        "properties": {
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "negative": {"type": "integer", "exclusiveMaximum": 0},
            "big": {"type": "integer", "minimum": 1000},
            "tenth": {"type": "number", "multipleOf": 0.1, "minimum": 0.25},
            "fives": {"type": "integer", "multipleOf": 5, "exclusiveMinimum": 10, "maximum": 30},
            "half": {"type": "integer", "multipleOf": 0.5, "minimum": 3.5},
            "price": {"type": "number", "minimum": 10.5, "maximum": 10.75, "multipleOf": 0.25},
            "tight": {"type": "number", "exclusiveMinimum": 2.5, "exclusiveMaximum": 2.5000001},
        },
    },
    "$defs refs": {
        "$defs": {
            "money": {
                "type": "object",
                "properties": {
                    "amount": {"type": "number", "minimum": 0},
                    "currency": {"$ref": "#/$defs/currency"},
                },
                "required": ["amount", "currency"],
            },
            "currency": {"type": "string", "enum": ["EUR", "USD"]},
        },
        "type": "object",
        "properties": {"price": {"$ref": "#/$defs/money"}, "tax": {"$ref": "#/$defs/money"}},
        "required": ["price"],
    },
    "definitions refs": {
        "definitions": {"id": {"type": "string", "pattern": "^id_[0-9]{3}$"}},
        "type": "array",
        "items": {"$ref": "#/definitions/id"},
        "minItems": 2,
        "uniqueItems": True,
    },
    "recursive tree": {"$defs": {"node": NODE}, "$ref": "#/$defs/node"},
    "recursive via root": {
        "type": "object",
        "properties": {
            "value": {"type": "integer"},
            "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
        },
        "required": ["value", "next"],
        "additionalProperties": False,
    },
    "anyOf with null": {
        "type": "object",
        "properties": {
            "nickname": {"anyOf": [{"type": "string", "maxLength": 8}, {"type": "null"}]},
            "age": {"type": ["integer", "null"], "minimum": 18},
        },
        "required": ["nickname", "age"],
    },
    "strict": {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "tags": {"type": "array", "items": {"type": "string"}},
            "author": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "email": {"type": ["string", "null"]}},
                "required": ["name", "email"],
                "additionalProperties": False,
            },
        },
        "required": ["title", "rating", "tags", "author"],
        "additionalProperties": False,
    },
    "oneOf exclusive": {
        "oneOf": [
            {"type": "integer", "minimum": 0},
            {"type": "integer", "maximum": 10},
            {"type": "string"},
        ]
    },
    "allOf merge": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer", "minimum": 5}}, "required": ["b"]},
        ]
    },
    "unique tuples": {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "boolean"}, {"type": "null"}],
        "items": {"type": "integer", "enum": [7, 8, 9]},
        "minItems": 6,
        "uniqueItems": True,
    },
    "additional properties": {
        "type": "object",
        "additionalProperties": {"type": "integer", "minimum": 3},
        "required": ["count"],
        "minProperties": 2,
    },
    "not": {"type": "string", "not": {"const": "example"}},
    "dependent and contains": {
        "type": "object",
        "properties": {
            "card": {"type": "string"},
            "list": {
                "type": "array",
                "items": {"type": "integer"},
                "contains": {"type": "integer", "minimum": 100},
            },
        },
        "dependentRequired": {"card": ["billing"]},
        "maxProperties": 3,
    },
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_json_schema_output_validates(name, response_validator):
    schema = SCHEMAS[name]
    response = complete(body_for(schema))
    assert_wire_shape(response, response_validator)
    content = response["choices"][0]["message"]["content"]
    assert json.dumps(json.loads(content), separators=(",", ":"), ensure_ascii=False) == content
    assert_valid(json.loads(content), schema)
    assert instance_for(schema, request_seed(body_for(schema))) == json.loads(content)


def test_battery_is_big_enough():
    assert len(SCHEMAS) >= 15


def test_strict_schema_gets_every_property_in_order():
    schema = SCHEMAS["strict"]
    assert list(instance_for(schema)) == list(schema["properties"])


def test_optional_properties_are_emitted_too():
    assert set(instance_for(SCHEMAS["nested objects"])["person"]["address"]) == {"city", "zip"}


def test_recursion_stops():
    tree = instance_for(SCHEMAS["recursive tree"])
    assert tree["children"] and tree["children"][0]["children"] == []


def test_strings_are_meaningful():
    assert instance_for({"type": "object", "properties": {"firstName": {"type": "string"}}}) == {
        "firstName": "example first name"
    }


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 5, "maximum": 4},  # contradictory
        {"type": "string", "pattern": "(?<=a)b"},  # lookbehind: not generated
        {"type": "string", "pattern": "[unclosed"},  # not a regex at all
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"self": {"$ref": "#"}}, "required": ["self"]},
        {"anyOf": [{"$ref": "#"}, {"$ref": "#"}]},
        {"type": "array", "items": False, "minItems": 2},
        {"allOf": [{"type": "string"}, {"type": "integer"}]},
        {"type": "number", "multipleOf": 0},
        {"type": "weird", "properties": 3, "required": "x", "enum": []},
        True,
        False,
    ],
)
def test_impossible_or_odd_schemas_give_a_best_effort(schema):
    json.dumps(instance_for(schema))
    complete(body_for(schema))


# --- tools ---------------------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
BOOK = {
    "type": "function",
    "function": {
        "name": "book_flight",
        "parameters": {
            "type": "object",
            "$defs": {"iata": {"type": "string", "pattern": "^[A-Z]{3}$"}},
            "properties": {
                "from": {"$ref": "#/$defs/iata"},
                "to": {"$ref": "#/$defs/iata"},
                "date": {"type": "string", "format": "date"},
                "passengers": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
            "required": ["from", "to", "date", "passengers"],
        },
    },
}


def tool_body(**extra: Any) -> dict:
    return {"model": "m", "messages": [USER], "tools": [WEATHER, BOOK], **extra}


def only_call(response: dict) -> dict:
    (choice,) = response["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    return call


def test_tools_call_the_first_tool_with_valid_arguments(response_validator):
    response = complete(tool_body())
    assert_wire_shape(response, response_validator)
    call = only_call(response)
    assert call["function"]["name"] == "get_weather"
    assert_valid(json.loads(call["function"]["arguments"]), WEATHER["function"]["parameters"])


def test_tool_choice_names_the_second_tool(response_validator):
    choice = {"type": "function", "function": {"name": "book_flight"}}
    response = complete(tool_body(tool_choice=choice))
    assert_wire_shape(response, response_validator)
    call = only_call(response)
    assert call["function"]["name"] == "book_flight"
    assert_valid(json.loads(call["function"]["arguments"]), BOOK["function"]["parameters"])


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_auto_and_required_call_a_tool(tool_choice):
    assert only_call(complete(tool_body(tool_choice=tool_choice)))["function"]["name"]


def test_tool_choice_none_answers_with_text():
    choice = complete(tool_body(tool_choice="none"))["choices"][0]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]


def test_after_a_tool_result_the_answer_is_text(response_validator):
    first = complete(tool_body())
    call = only_call(first)
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'},
    ]
    response = complete(tool_body(messages=messages))
    assert_wire_shape(response, response_validator)
    (choice,) = response["choices"]
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]
    assert choice["message"]["content"] == '[offline] tool result: {"temp": 21}'


def test_a_tool_without_parameters_gets_empty_arguments():
    tools = [{"type": "function", "function": {"name": "now"}}]
    call = only_call(complete({"model": "m", "messages": [USER], "tools": tools}))
    assert call["function"]["arguments"] == "{}"


def test_tool_call_ids_are_deterministic():
    assert only_call(complete(tool_body()))["id"] == only_call(complete(tool_body()))["id"]
    other = complete(tool_body(messages=[{"role": "user", "content": "other"}]))
    assert only_call(other)["id"] != only_call(complete(tool_body()))["id"]


# --- never raises --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"model": "m"},
        {"model": 3, "messages": "hello"},
        {"model": "m", "messages": [None, 1, {"role": "user"}, {"content": None}]},
        {"model": "m", "messages": [{"role": "user", "content": [{"text": 5}, "x", None]}]},
        {"model": "m", "messages": [USER], "tools": [None, {"type": "function"}, {"function": 1}]},
        {"model": "m", "messages": [USER], "tools": "x", "tool_choice": {"function": None}},
        {"model": "m", "messages": [USER], "response_format": "json"},
        {"model": "m", "messages": [USER], "response_format": {"type": "json_schema"}},
        {"model": "m", "messages": [USER], "stop": [None, ""], "max_tokens": "ten", "n": 0},
        {"model": "m", "messages": [USER], "max_completion_tokens": 0, "max_tokens": True},
        {"model": "m", "messages": [USER], "seed": float("nan"), "extra": object()},
    ],
)
def test_odd_bodies_do_not_raise(body, response_validator):
    assert_wire_shape(complete(body), response_validator)


# --- property test -------------------------------------------------------------------------

NAMES = st.sampled_from(["id", "name", "tags", "count", "firstName", "e-mail", "x"])
FORMATS = ["date", "date-time", "time", "email", "uuid", "ipv4", "ipv6"]
PATTERNS = [r"^[A-Z]{3}-\d{4}$", r"^[a-z]+$", r"^\d{2,4}$", "^(yes|no)$", r"^[^@\s]+@ex\.com$"]


@st.composite
def strings(draw: st.DrawFn) -> dict:
    schema: dict[str, Any] = {"type": "string"}
    low = draw(st.none() | st.integers(0, 30))
    if low is not None:
        schema["minLength"] = low
    if draw(st.booleans()):
        schema["maxLength"] = (low or 0) + draw(st.integers(0, 30))
    elif draw(st.booleans()):
        schema = {"type": "string", "pattern": draw(st.sampled_from(PATTERNS))}
    elif draw(st.booleans()):  # formats fix the length: no length bounds with them
        schema = {"type": "string", "format": draw(st.sampled_from(FORMATS))}
    return schema


@st.composite
def numbers(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["integer", "number"]))
    schema: dict[str, Any] = {"type": kind}
    step = draw(st.none() | st.sampled_from([1, 2, 5, 0.5, 0.25, 0.1, 3]))
    low = draw(st.none() | st.integers(-1000, 1000))
    if low is not None:
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        width = draw(st.integers(12, 500))  # wide enough to hold a multiple of any step
        high = (low if low is not None else 0) + width
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = high
    if step is not None:
        schema["multipleOf"] = step
    return schema


LEAVES = (
    strings()
    | numbers()
    | st.just({"type": "boolean"})
    | st.just({"type": "null"})
    | st.lists(st.text(max_size=5) | st.integers(), min_size=1, max_size=4, unique=True).map(
        lambda values: {"enum": values}
    )
)


def containers(children: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    @st.composite
    def objects(draw: st.DrawFn) -> dict:
        properties = draw(st.dictionaries(NAMES, children, max_size=4))
        names = list(properties)
        required = [n for n in names if draw(st.booleans())]
        schema = {"type": "object", "properties": properties, "required": required}
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    @st.composite
    def arrays(draw: st.DrawFn) -> dict:
        low = draw(st.integers(0, 3))
        schema = {"type": "array", "items": draw(children), "minItems": low}
        if draw(st.booleans()):
            schema["maxItems"] = low + draw(st.integers(0, 3))
        return schema

    @st.composite
    def nullable(draw: st.DrawFn) -> dict:
        return {"anyOf": [draw(children), {"type": "null"}]}

    return objects() | arrays() | nullable()


def nested(depth: int) -> st.SearchStrategy[dict]:
    """Schemas whose containers nest at most ``depth`` levels deep."""
    return LEAVES if depth == 0 else LEAVES | containers(nested(depth - 1))


SCHEMA_TREES = nested(3)


@settings(max_examples=300, deadline=None)
@given(SCHEMA_TREES)
def test_instances_of_random_schemas_validate(schema):
    assert_valid(instance_for(schema), schema)


# --- answers that follow the request -------------------------------------------------------

TRIAGE = {
    "type": "object",
    "properties": {
        "team": {"type": "string", "enum": ["billing", "platform", "docs"]},
        "urgent": {"type": "boolean"},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "summary": {"type": "string"},
    },
    "required": ["team", "urgent", "priority", "summary"],
    "additionalProperties": False,
}


def triage_answer(ticket: str) -> dict:
    body = body_for(TRIAGE)
    body["messages"] = [{"role": "user", "content": f"Route this ticket: {ticket}"}]
    return json.loads(complete(body)["choices"][0]["message"]["content"])


def test_choices_follow_the_request_and_repeat_for_the_same_one():
    tickets = [f"ticket number {i}" for i in range(12)]
    answers = [triage_answer(t) for t in tickets]
    assert [triage_answer(t) for t in tickets] == answers  # the same request, the same answer
    assert {a["team"] for a in answers} == {"billing", "platform", "docs"}
    assert {a["urgent"] for a in answers} == {True, False}
    assert len({a["priority"] for a in answers}) > 1
    assert len({a["summary"] for a in answers}) > 1
    for answer in answers:
        assert_valid(answer, TRIAGE)


def test_a_changed_prompt_gets_a_visibly_different_answer():
    before, after = triage_answer("The site is down."), triage_answer("The site is down!")
    assert before != after
    assert before["summary"].startswith("example summary (")


def test_tool_arguments_follow_the_request():
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
            },
        },
    }
    arguments = set()
    for city in ("Lisbon", "Oslo", "Lima", "Pune", "Kyiv", "Baku"):
        body = {"model": "m", "messages": [{"role": "user", "content": city}], "tools": [tool]}
        arguments.add(
            complete(body)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        )
    assert len(arguments) > 1


def test_without_a_request_the_instance_is_the_plain_one():
    assert instance_for(TRIAGE) == {
        "team": "billing",
        "urgent": True,
        "priority": 1,
        "summary": "example summary",
    }
