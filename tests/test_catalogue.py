"""The model catalogue (runner/providers/catalogue.py): its tables hang together."""

from __future__ import annotations

import pytest

from runner.providers.catalogue import CATALOGUES, GROQ, catalogue_for, catalogue_named
from runner.spec.objects import Provider


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_table_names_its_source_and_date(name: str) -> None:
    table = CATALOGUES[name]
    assert table.source.startswith("https://")
    assert table.as_of == "2026-12-08"
    assert 0 <= table.batch_discount < 1


@pytest.mark.parametrize("name", sorted(CATALOGUES))
def test_every_retired_model_points_at_a_current_one(name: str) -> None:
    table = CATALOGUES[name]
    for model in table.models.values():
        if model.status in ("retired", "deprecated"):
            assert model.replacement is not None, model.id
            replacement = table.get(model.replacement)
            assert replacement is not None and replacement.usable, model.id
        else:
            assert model.context_window and model.max_completion_tokens, model.id
            assert model.input_price is not None and model.output_price is not None, model.id


def test_the_ids_old_specs_name_are_retired_with_their_replacement() -> None:
    expected = {
        "llama-3.3-70b-versatile": "openai/gpt-oss-120b",
        "llama-3.1-8b-instant": "openai/gpt-oss-20b",
        "llama3-70b-8192": "openai/gpt-oss-120b",
        "llama3-8b-8192": "openai/gpt-oss-20b",
        "mixtral-8x7b-32768": "openai/gpt-oss-120b",
        "gemma2-9b-it": "openai/gpt-oss-20b",
        "gemma-7b-it": "openai/gpt-oss-20b",
        "llama-3.2-11b-vision-preview": "qwen/qwen3.8-27b",
        "llama-3.2-90b-vision-preview": "qwen/qwen3.8-27b",
        "meta-llama/llama-4-scout-17b-16e-instruct": "qwen/qwen3.8-27b",
    }
    for model_id, replacement in expected.items():
        model = GROQ.get(model_id)
        assert model is not None and model.status == "retired"
        assert model.replacement == replacement
    assert GROQ.get("llama-3.3-70b-versatile").shutdown == "2026-08-16"  # type: ignore[union-attr]


def test_closest_ids_for_a_slip_or_a_missing_owner() -> None:
    assert GROQ.closest("openai/gpt-oss-21b") == ["openai/gpt-oss-20b"]
    assert GROQ.closest("gpt-oss-120b") == ["openai/gpt-oss-120b"]
    assert GROQ.closest("something-else-entirely") == []


def test_the_price_of_a_request_and_the_batch_discount() -> None:
    model = GROQ.get("openai/gpt-oss-20b")
    assert model is not None
    assert model.cost(1_000_000, 1_000_000) == pytest.approx(0.375)
    assert model.cost(1_000_000, 1_000_000, GROQ.batch_discount) == pytest.approx(0.1875)


def test_which_table_a_provider_is_checked_against() -> None:
    assert catalogue_for(None) is GROQ
    assert catalogue_for(Provider("openai")) is CATALOGUES["openai"]
    assert catalogue_for(Provider("my-proxy", "http://127.0.0.1:1/v1")) is None
    assert catalogue_for(Provider("offline")) is None
    assert catalogue_named("groq", "https://api.groq.com/openai/v1/") is GROQ
    assert catalogue_named("groq", "http://127.0.0.1:8000/v1") is None
    assert catalogue_named("custom") is None
