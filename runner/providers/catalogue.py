"""The models each built-in provider serves, as data: status, limits, what a model takes, and
its price. ``runner validate`` reads it at a spec's ``model:`` line, ``runner models`` prints it,
and a run's cost is priced from it.

A table changes with the world, so each carries its source and the date it was checked. Prices
are US dollars per million tokens. Retired ids stay in the table, with what replaced them: old
specs keep naming them, and the provider answers them with an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from runner.providers.endpoints import BUILTIN_PROVIDERS
from runner.spec.hints import close_matches
from runner.spec.objects import Provider

Status = Literal["production", "preview", "deprecated", "retired"]
STATUSES: tuple[Status, ...] = ("production", "preview", "deprecated", "retired")


@dataclass(frozen=True)
class Model:
    """One model id of one provider. ``reasoning_effort`` lists the values the model takes
    (empty: it takes no reasoning parameters); a limit or price of None is not documented."""

    id: str
    status: Status
    context_window: int | None = None
    max_completion_tokens: int | None = None
    tools: bool = True
    json_schema: bool = True
    strict: bool = False  # json_schema (and tools) with strict: true, by constrained decoding
    images: bool = False
    reasoning_effort: tuple[str, ...] = ()
    input_price: float | None = None
    output_price: float | None = None
    shutdown: str | None = None  # the date a deprecated model stops (or a retired one stopped)
    replacement: str | None = None  # what the provider recommends instead
    note: str = ""

    @property
    def usable(self) -> bool:
        return self.status != "retired"

    @property
    def takes(self) -> tuple[str, ...]:
        """What the model takes, in words: ``tools``, ``json_schema``, ``strict``, ..."""
        names = ("tools", "json_schema", "strict", "images")
        found = [n for n in names if getattr(self, n)]
        if self.reasoning_effort:
            found.append("reasoning")
        return tuple(found)

    def cost(self, prompt_tokens: int, completion_tokens: int, discount: float = 0.0) -> float:
        """The price of one request's tokens, in US dollars (0 when the price is unknown)."""
        dollars = (prompt_tokens * (self.input_price or 0.0)) + (
            completion_tokens * (self.output_price or 0.0)
        )
        return dollars / 1_000_000 * (1.0 - discount)


@dataclass(frozen=True)
class Catalogue:
    """The table of one built-in provider, with where it comes from and when it was checked."""

    provider: str
    source: str
    as_of: str
    models: Mapping[str, Model]
    batch_discount: float = 0.0  # the Batch API's discount on both prices (0.5: half price)
    batch_source: str = ""
    sources: tuple[str, ...] = ()  # the other pages the table was checked against

    def get(self, model_id: str) -> Model | None:
        return self.models.get(model_id)

    @property
    def current(self) -> list[Model]:
        return [m for m in self.models.values() if m.usable]

    def closest(self, model_id: str) -> list[str]:
        """The current ids ``model_id`` is most likely a slip of (at most three)."""
        ids = [m.id for m in self.current]
        found = close_matches(model_id, ids)
        if found:
            return found
        # Also a model named without its owner ("gpt-oss-20b" for "openai/gpt-oss-20b").
        tail = model_id.rsplit("/", 1)[-1]
        return [i for i in ids if i.rsplit("/", 1)[-1] == tail] or close_matches(
            tail, [i.rsplit("/", 1)[-1] for i in ids]
        )


def _models(models: Iterable[Model]) -> Mapping[str, Model]:
    return {m.id: m for m in models}


def _retired(replacement: str, *ids: tuple[str, str | None]) -> list[Model]:
    return [Model(i, "retired", shutdown=day, replacement=replacement) for i, day in ids]


GPT_OSS_EFFORT = ("low", "medium", "high")

# Groq, checked 2026-12-08:
# - https://console.groq.com/docs/models: ids, status, context window, max completion tokens,
#   price per 1M tokens (openai/gpt-oss-120b $0.15/$0.60, openai/gpt-oss-20b $0.075/$0.30;
#   qwen/qwen3.8-27b $0.80/$4.00, images and text in, 131K context, 16,384 out).
# - https://console.groq.com/docs/structured-outputs: strict: true (constrained decoding) only
#   on select models, the gpt-oss models; the others take json_schema best-effort.
# - https://console.groq.com/docs/reasoning: reasoning_effort low/medium/high on gpt-oss;
#   none/default on qwen3.8.
# - https://console.groq.com/docs/deprecations: llama-3.3-70b-versatile and llama-3.1-8b-instant
#   shut down 2026-08-16 (replacements openai/gpt-oss-120b and openai/gpt-oss-20b);
#   qwen/qwen3-32b and meta-llama/llama-4-scout-17b-16e-instruct 2026-07-17 (openai/gpt-oss-120b;
#   for Scout's images, the vision model Groq serves now, qwen/qwen3.8-27b: the qwen/qwen3.6-27b
#   Groq named then is itself retired); meta-llama/llama-4-maverick-17b-128e-instruct
#   2026-03-09; mixtral-8x7b-32768 2025-03-20. Older ids (llama3-*, gemma*, the llama-3.2
#   previews) were retired before; their replacement is given as today's nearest model.
# - https://console.groq.com/docs/batch: "50% lower cost" than the synchronous API.
GROQ = Catalogue(
    provider="groq",
    source="https://console.groq.com/docs/models",
    as_of="2026-12-08",
    batch_discount=0.5,
    batch_source="https://console.groq.com/docs/batch",
    sources=(
        "https://console.groq.com/docs/deprecations",
        "https://console.groq.com/docs/structured-outputs",
        "https://console.groq.com/docs/reasoning",
    ),
    models=_models(
        [
            Model(
                "openai/gpt-oss-120b",
                "production",
                131_072,
                65_536,
                strict=True,
                reasoning_effort=GPT_OSS_EFFORT,
                input_price=0.15,
                output_price=0.60,
            ),
            Model(
                "openai/gpt-oss-20b",
                "production",
                131_072,
                65_536,
                strict=True,
                reasoning_effort=GPT_OSS_EFFORT,
                input_price=0.075,
                output_price=0.30,
            ),
            Model(
                "openai/gpt-oss-safeguard-20b",
                "preview",
                131_072,
                65_536,
                json_schema=False,
                reasoning_effort=GPT_OSS_EFFORT,
                input_price=0.075,
                output_price=0.30,
                note="a safety classifier: give it a policy in the system message",
            ),
            Model(
                "qwen/qwen3.8-27b",
                "preview",
                131_072,
                16_384,
                images=True,
                reasoning_effort=("none", "default"),
                input_price=0.80,
                output_price=4.00,
                note="Groq's vision model: images and text in",
            ),
            *_retired(
                "openai/gpt-oss-120b",
                ("llama-3.3-70b-versatile", "2026-08-16"),
                ("qwen/qwen3-32b", "2026-07-17"),
                ("moonshotai/kimi-k2-instruct-0905", None),
                ("moonshotai/kimi-k2-instruct", None),
                ("llama3-70b-8192", None),
                ("llama-3.1-70b-versatile", None),
                ("llama-3.3-70b-specdec", None),
                ("mixtral-8x7b-32768", "2025-03-20"),
                ("deepseek-r1-distill-llama-70b", None),
                ("qwen-qwq-32b", None),
                ("qwen-2.5-32b", None),
                ("mistral-saba-24b", None),
                ("llama3-groq-70b-8192-tool-use-preview", None),
            ),
            *_retired(
                "openai/gpt-oss-20b",
                ("llama-3.1-8b-instant", "2026-08-16"),
                ("llama3-8b-8192", None),
                ("gemma2-9b-it", None),
                ("gemma-7b-it", None),
                ("llama-3.2-1b-preview", None),
                ("llama-3.2-3b-preview", None),
                ("llama3-groq-8b-8192-tool-use-preview", None),
            ),
            *_retired(
                "qwen/qwen3.8-27b",
                ("meta-llama/llama-4-scout-17b-16e-instruct", "2026-07-17"),
                ("meta-llama/llama-4-maverick-17b-128e-instruct", "2026-03-09"),
                ("qwen/qwen3.6-27b", None),
                ("llama-3.2-11b-vision-preview", None),
                ("llama-3.2-90b-vision-preview", None),
            ),
        ]
    ),
)

GPT5_EFFORT = ("minimal", "low", "medium", "high")

# OpenAI, checked 2026-12-08: https://platform.openai.com/docs/models and
# https://openai.com/api/pricing (gpt-5 $1.25/$10.00, gpt-5-mini $0.25/$2.00, gpt-5-nano
# $0.05/$0.40 per 1M tokens; 400,000 context, 128,000 out; text and images in; reasoning_effort
# minimal/low/medium/high); https://platform.openai.com/docs/guides/batch: half price. Only the
# models runner's docs use: any other id is reported as unknown, a warning.
OPENAI = Catalogue(
    provider="openai",
    source="https://platform.openai.com/docs/models",
    as_of="2026-12-08",
    batch_discount=0.5,
    batch_source="https://platform.openai.com/docs/guides/batch",
    sources=("https://openai.com/api/pricing",),
    models=_models(
        Model(
            name,
            "production",
            400_000,
            128_000,
            strict=True,
            images=True,
            reasoning_effort=GPT5_EFFORT,
            input_price=price_in,
            output_price=price_out,
        )
        for name, price_in, price_out in (
            ("gpt-5", 1.25, 10.00),
            ("gpt-5-mini", 0.25, 2.00),
            ("gpt-5-nano", 0.05, 0.40),
        )
    ),
)

CATALOGUES: Mapping[str, Catalogue] = {"groq": GROQ, "openai": OPENAI}


def catalogue_for(provider: Provider | None) -> Catalogue | None:
    """The table a spec's requests are checked and priced against: the built-in provider's,
    none for a provider with its own base_url (it serves what it serves) or offline."""
    if provider is None:
        return GROQ
    if provider.base_url is not None:
        return None
    return CATALOGUES.get(provider.name)


def catalogue_named(name: str, base_url: str | None = None) -> Catalogue | None:
    """The table of an endpoint by name, when it still points at the provider's own URL."""
    builtin = BUILTIN_PROVIDERS.get(name)
    if builtin is None or (base_url is not None and base_url.rstrip("/") != builtin.base_url):
        return None
    return CATALOGUES.get(name)


__all__ = ["CATALOGUES", "Catalogue", "Model", "catalogue_for", "catalogue_named"]
