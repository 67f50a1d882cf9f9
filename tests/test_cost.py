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
        "cost: $1.12, from the usage each answer (and verdict) returned "
        "(1 answer could not be priced)"
    ]
    assert CostTally().describe() == []  # offline runs print no cost line


def test_the_judges_requests_are_priced_with_the_answer_at_normal_rates():
    judged = record(judges=[record("openai/gpt-oss-120b"), record(cached=True), "odd"])
    tally = CostTally()
    tally.add(judged, batch=True)  # the answer came through the Batch API, the judge did not
    assert tally.by_model == {
        "openai/gpt-oss-20b": pytest.approx(0.1875),
        "openai/gpt-oss-120b": pytest.approx(0.75),
    }
    assert tally.unpriced == 0


def test_a_dry_run_states_the_requests_and_an_estimated_cost(project):
    from helpers import write_spec

    import runner

    write_spec(project, "a", "x" * 396, max_completion_tokens=1000)
    plan = runner.plan_specs("specs", provider="groq", cache="off")
    # a 400-character prompt is about 100 tokens: 100 x $0.15 + 1,000 x $0.60 per million
    [request] = plan.requests
    assert request.source == "send"
    assert request.estimated_usd == pytest.approx((101 * 0.15 + 1000 * 0.60) / 1e6, rel=0.05)
    assert "estimated cost: at most $0.0006162 for 1 request to send (an estimate:" in (
        plan.describe()
    )
    offline = runner.plan_specs("specs", provider="offline", cache="off")
    assert "estimated cost" not in offline.describe()
