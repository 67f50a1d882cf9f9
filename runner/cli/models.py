"""``runner models``: the model catalogue of each built-in provider, and with --online what the
provider lists now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from runner.cli.options import echo_json, reports_errors

if TYPE_CHECKING:
    from runner.api import ModelListing
    from runner.providers.catalogue import Model


@click.command(short_help="The models runner knows: status, limits, prices.")
@click.option(
    "--provider",
    type=click.Choice(["groq", "openai"]),
    help="Only this provider's catalogue (default: every built-in one).",
)
@click.option(
    "--online",
    is_flag=True,
    help="Also read the provider's GET /models with its key, and show how it differs.",
)
@click.option("--base-url", help="With --online: read the list from this server instead.")
@click.option("--api-key-env", help="With --online: the variable holding the key.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@reports_errors
def models(
    provider: str | None,
    online: bool,
    base_url: str | None,
    api_key_env: str | None,
    as_json: bool,
) -> None:
    """Print the model catalogue: each model's id, status, context window, most completion
    tokens, price per million input and output tokens, and what it takes. Prices are in US
    dollars, from the provider's pages on the date shown."""
    from runner.api import list_models

    listings = list_models(provider, online=online, base_url=base_url, api_key_env=api_key_env)
    if as_json:
        echo_json([_as_json(listing) for listing in listings])
        return
    click.echo("\n\n".join(_describe(listing) for listing in listings))


def _price(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if round(value, 2) == value else f"{value:.3f}"


def _row(model: Model) -> list[str]:
    return [
        model.id,
        model.status,
        f"{model.context_window:,}" if model.context_window else "-",
        f"{model.max_completion_tokens:,}" if model.max_completion_tokens else "-",
        _price(model.input_price),
        _price(model.output_price),
        ", ".join(model.takes),
    ]


def _describe(listing: ModelListing) -> str:
    table = listing.catalogue
    discount = f"; Batch API {table.batch_discount:.0%} off" if table.batch_discount else ""
    lines = [f"{table.provider}: as of {table.as_of}, from {table.source}{discount}"]
    head = ["model", "status", "context", "max out", "$/M in", "$/M out", "takes"]
    rows = [head, *(_row(m) for m in table.current)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        lines.append(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        )
    retired = [m for m in table.models.values() if not m.usable]
    if retired:
        lines.append("retired (validate reports them, with their replacement):")
        for m in retired:
            when = f" on {m.shutdown}" if m.shutdown else ""
            lines.append(f"  {m.id}{when} -> {m.replacement}")
    if listing.live is not None:
        lines.append(f"online: {len(listing.live)} models listed by GET {listing.live_url}")
        lines.append("  listed, not in the catalogue: " + (", ".join(listing.only_live) or "none"))
        lines.append("  in the catalogue, not listed: " + (", ".join(listing.only_table) or "none"))
    return "\n".join(lines)


def _as_json(listing: ModelListing) -> dict[str, Any]:
    from dataclasses import asdict

    table = listing.catalogue
    document: dict[str, Any] = {
        "provider": table.provider,
        "source": table.source,
        "as_of": table.as_of,
        "batch_discount": table.batch_discount,
        "models": [asdict(m) for m in table.models.values()],
    }
    if listing.live is not None:
        document["online"] = {
            "url": listing.live_url,
            "models": list(listing.live),
            "not_in_catalogue": listing.only_live,
            "not_listed": listing.only_table,
        }
    return document
