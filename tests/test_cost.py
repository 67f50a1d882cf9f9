"""What a run's answers cost (runner/runs/cost.py): priced from the usage returned and the
model catalogue, with the Batch discount; what cannot be priced is counted apart (21.6)."""

from __future__ import annotations

import pytest

from runner.runs.cost import CostTally, record_cost

GROQ = {"name": "groq", "base_url": "https://api.groq.com/openai/v1", "api_key_env": "GROQ_API_KEY"}


def record(model: str = "openai/gpt-oss-20b", provider=GROQ, **fields) -> dict:
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    return {"request": {"model": model}, "provider": provider, "usage": usage, **fields}


def test_an_answer_is_priced_from_its_usage_and_the_catalogue():
    # openai/gpt-oss-20b: $0.075 in, $0.30 out per million (console.groq.com/docs/models)
    assert record_cost(record()) == pytest.approx(0.375)
    assert record_cost(record(), batch=True) == pytest.approx(0.1875)  # Groq Batch: 50% off


def test_what_costs_nothing_and_what_cannot_be_priced():
    assert record_cost(record(cached=True)) == 0.0
    assert record_cost(record(offline=True)) == 0.0
    local = {"name": "custom", "base_url": "http://127.0.0.1:9/v1"}
    assert record_cost(record(provider=local)) is None
    assert record_cost(record(model="brand/new-model")) is None


def test_the_tally_gives_the_cost_by_model_and_counts_the_unpriced():
    tally = CostTally()
    for item in (record(), record("openai/gpt-oss-120b"), record("brand/new-model")):
        tally.add(item)
    assert tally.total == pytest.approx(0.375 + 0.75)
    assert tally.to_json()["unpriced"] == 1
    assert tally.describe() == [
        "cost: $1.1250, from the usage each answer returned (1 answers could not be priced)"
    ]
    assert CostTally().describe() == []  # offline runs print no cost line
