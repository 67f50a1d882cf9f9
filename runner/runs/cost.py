"""What a run's answers cost, from the ``usage`` each provider returned and the prices of the
model catalogue (runner/providers/catalogue.py). A request answered from the cache, by the
offline provider, or by a server with its own base URL costs nothing runner can price."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.errors import plural
from runner.providers.catalogue import catalogue_named


def record_cost(record: Mapping[str, Any], batch: bool = False) -> float | None:
    """The US dollars one record's answer cost; None when it cannot be priced (no usage, an
    unknown model or provider, the offline provider, a cached answer counts 0)."""
    if record.get("cached") or record.get("offline"):
        return 0.0
    usage = record.get("usage")
    provider = record.get("provider")
    body = record.get("request")
    if not isinstance(usage, dict) or not isinstance(provider, dict):
        return None if usage else 0.0
    table = catalogue_named(str(provider.get("name")), provider.get("base_url"))
    model_id = body.get("model") if isinstance(body, dict) else None
    model = table.get(model_id) if table is not None and isinstance(model_id, str) else None
    if model is None or model.input_price is None or model.output_price is None:
        return None
    discount = table.batch_discount if batch and table is not None else 0.0
    return model.cost(
        int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), discount
    )


@dataclass
class CostTally:
    """A run's cost so far: priced dollars by model, and how many answers could not be priced."""

    by_model: dict[str, float] = field(default_factory=dict)
    unpriced: int = 0

    @property
    def total(self) -> float:
        return sum(self.by_model.values())

    def add(self, record: Mapping[str, Any], batch: bool = False) -> None:
        """Count a record's answer and its judges' requests (which never go through the
        Batch API, so they are priced at the provider's normal rates)."""
        self._add_one(record, batch)
        judges = record.get("judges")
        for judged in judges if isinstance(judges, list) else ():
            if isinstance(judged, Mapping):
                self._add_one(judged, batch=False)

    def _add_one(self, record: Mapping[str, Any], batch: bool) -> None:
        cost = record_cost(record, batch)
        if cost is None:
            self.unpriced += 1
            return
        if cost:
            body = record.get("request") or {}
            model = str(body.get("model")) if isinstance(body, dict) else "?"
            self.by_model[model] = self.by_model.get(model, 0.0) + cost

    def describe(self) -> list[str]:
        """The summary's cost line; none when nothing was priced (offline, a local server)."""
        if not self.by_model:
            return []
        line = f"cost: {usd(self.total)}, from the usage each answer (and verdict) returned"
        if self.unpriced:
            line += f" ({plural(self.unpriced, 'answer')} could not be priced)"
        return [line]

    def to_json(self) -> dict[str, Any]:
        return {"usd": round(self.total, 6), "by_model": self.by_model, "unpriced": self.unpriced}


def usd(dollars: float) -> str:
    """Dollars as a person reads them: cents, or the first figures of a fraction of a cent."""
    if dollars == 0 or dollars >= 0.01:
        return f"${dollars:.4f}" if dollars < 1 else f"${dollars:,.2f}"
    return f"${dollars:.8f}".rstrip("0")


CHARS_PER_TOKEN = 4  # a rough rule for English text; the estimate says it is one


def estimate_request(
    body: Mapping[str, Any], provider: str, base_url: str | None
) -> tuple[float | None, int]:
    """A dry run's estimate of one request: (US dollars at most, prompt tokens estimated from
    the rendered text), completion tokens taken at the request's max_completion_tokens (or
    max_tokens; none counted when neither is set). None when nothing prices it."""
    import json

    messages = body.get("messages") or []
    prompt = len(json.dumps(messages, ensure_ascii=False)) // CHARS_PER_TOKEN + 1
    table = catalogue_named(provider, base_url)
    model = table.get(str(body.get("model"))) if table is not None else None
    if model is None or model.input_price is None:
        return None, prompt
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return model.cost(prompt, int(limit) if isinstance(limit, int) else 0), prompt
