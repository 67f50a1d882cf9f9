"""Markdown tables of the figures bench/run.py measured, and the targets met or missed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NAMES = {
    "raw": "raw urllib3 + json",
    "groq": "groq SDK",
    "openai": "openai SDK",
    "runner": "runner run, one spec file per request",
    "runner-cases": "runner run, one spec, a case per request",
    "promptfoo": "promptfoo 0.123.1 eval (Node 22)",
}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def server_section(data: dict[str, dict[str, float]], n: int) -> str:
    rows = [
        [name, f"{row['server_cpu_ms']:.3f}", f"{row['client_cpu_ms']:.3f}", f"{row['wall_s']:.2f}"]
        for name, row in data.items()
    ]
    header = ["stub server", "server CPU ms/req", "raw client CPU ms/req", f"wall s (n={n})"]
    return f"### Stub server cost (raw urllib3 client, n={n})\n\n" + table(header, rows)


def sequential_section(data: dict[str, dict[str, float]], n: int) -> str:
    raw = data["raw"]
    rows = [
        [
            NAMES[client],
            f"{row['cpu_ms_marginal']:.3f}",
            ratio(row["cpu_ms_marginal"], raw["cpu_ms_marginal"]),
            f"{row['cpu_ms_whole']:.3f}",
            ratio(row["cpu_ms_whole"], raw["cpu_ms_whole"]),
            f"{row['wall_s']:.2f}",
            f"{row['startup_wall_s']:.2f} / {row['startup_cpu_s']:.2f}",
            f"{row['rss_mb']:.0f}",
        ]
        for client, row in data.items()
    ]
    header = [
        "client",
        "CPU ms/req marginal",
        "vs raw",
        "CPU ms/req whole process",
        "vs raw",
        "wall s",
        "n=10 run: wall s / CPU s",
        "peak RSS MB",
    ]
    groq = data["groq"]
    note = " ".join(
        f"{NAMES[name]} vs groq SDK: "
        f"{ratio(data[name]['cpu_ms_marginal'], groq['cpu_ms_marginal'])} marginal, "
        f"{ratio(data[name]['cpu_ms_whole'], groq['cpu_ms_whole'])} whole process."
        for name in ("runner", "runner-cases")
        if name in data
    )
    title = f"### Sequential: {n} requests, 0 ms latency, one at a time"
    return f"{title}\n\n{table(header, rows)}\n\n{note}"


def concurrent_section(data: dict[str, dict[str, float]], n: int, c: int, ideal: float) -> str:
    rows = [
        [
            NAMES[client],
            f"{row['wall_s']:.2f}",
            ratio(row["wall_s"], ideal),
            f"{row['send_s']:.2f}",
            ratio(row["send_s"], ideal),
            f"{row['cpu_ms_whole']:.3f}",
        ]
        for client, row in data.items()
    ]
    header = [
        "client",
        "wall s, whole process",
        "vs ideal",
        "wall s, send phase",
        "vs ideal",
        "CPU ms/req whole",
    ]
    title = f"### Concurrent: {n} requests, 100 ms latency, concurrency {c} (ideal {ideal:.1f} s)"
    return f"{title}\n\n{table(header, rows)}"


def rate_section(rows: list[dict[str, float]], limit: int, window: float, n: int, c: int) -> str:
    body = [
        [
            str(i + 1),
            f"{row['ok']:.0f}",
            f"{row['failed']:.0f}",
            f"{row['served_429']:.0f}",
            f"{row['send_s']:.2f}",
            ratio(row["send_s"], row["ideal_s"]),
            f"{row['wall_s']:.2f}",
            f"{row['budget_used']:.0%}",
        ]
        for i, row in enumerate(rows)
    ]
    header = [
        "round",
        "ok",
        "failed",
        "429s at server",
        "send s",
        "vs ideal",
        "wall s",
        "budget used",
    ]
    title = (
        f"### Rate-limited: runner, {n} requests at -c {c}, server allows {limit} per {window:g} s"
    )
    ideal = rows[0]["ideal_s"] if rows else float("nan")
    note = (
        f"Ideal send time {ideal:.1f} s (the last window opens then). Budget used = 200s served / "
        "the most a sliding window grants in the send time, limit x (1 + floor(T / window))."
    )
    return f"{title}\n\n{table(header, body)}\n\n{note}"


def structured_section(data: dict[str, dict[str, float]], n: int) -> str:
    groq = data["groq SDK + json.loads + jsonschema"]
    plain = data["runner, plain chat"]
    rows = [
        [
            label,
            f"{row['cpu_ms_marginal']:.3f}",
            f"{row['cpu_ms_whole']:.3f}",
            ratio(row["cpu_ms_marginal"], groq["cpu_ms_marginal"]),
            ratio(row["cpu_ms_marginal"], plain["cpu_ms_marginal"]),
            f"{row['rss_mb']:.0f}",
        ]
        for label, row in data.items()
    ]
    header = [
        "client",
        "CPU ms/req marginal",
        "CPU ms/req whole",
        "marginal vs groq+jsonschema",
        "marginal vs runner plain",
        "peak RSS MB",
    ]
    title = f"### Structured output: {n} requests, 10-field json_schema, 0 ms latency"
    return f"{title}\n\n{table(header, rows)}"


def startup_section(data: dict[str, float]) -> str:
    rows = [[name, f"{seconds * 1000:.0f}"] for name, seconds in data.items()]
    return "### Start-up (median wall)\n\n" + table(["command", "ms"], rows)


def scale_section(rows: list[dict[str, float]]) -> str:
    body = [
        [
            f"{row['rows']:,.0f}",
            f"{row['records']:,.0f}",
            f"{row['wall']:.1f}",
            f"{row['rows'] / row['wall']:,.0f}",
            f"{row['cpu']:.1f}",
            f"{row['peak_mb']:.0f}",
        ]
        for row in rows
    ]
    header = ["rows", "records saved", "wall s", "cases/s", "CPU s", "peak RSS MB"]
    title = "### Cases at scale: one spec over a CSV, offline provider, -c 8"
    return f"{title}\n\n{table(header, body)}"


def targets_section(config: Any, results: dict[str, Any]) -> str:
    seq, conc = results["sequential"], results["concurrent"]
    groq, raw = seq["groq"], seq["raw"]
    ideal = config.conc_n / config.conc_c * config.latency
    rate = results["rate_limited"]
    failed = sum(row["failed"] for row in rate)
    budget = min(row["budget_used"] for row in rate)
    start = results["startup"]
    help_s = start["runner --help"]
    validate_s = next(v for k, v in start.items() if k.startswith("runner validate"))
    rows = []
    for client, form in (("runner", "spec files"), ("runner-cases", "cases")):
        for kind in ("marginal", "whole"):
            key = f"cpu_ms_{kind}"
            vs_groq, vs_raw = seq[client][key] / groq[key], seq[client][key] / raw[key]
            rows.append(
                [
                    f"{form}: CPU/req <= 1.0x groq SDK ({kind})",
                    f"{vs_groq:.3f}x",
                    verdict(vs_groq <= 1),
                ]
            )
            rows.append(
                [
                    f"{form}: CPU/req <= 2x raw urllib3 ({kind})",
                    f"{vs_raw:.3f}x",
                    verdict(vs_raw <= 2),
                ]
            )
        for kind, key in (("whole process", "wall_s"), ("send phase", "send_s")):
            value = conc[client][key] / ideal
            rows.append(
                [
                    f"{form}: concurrent <= 1.15x ideal ({kind})",
                    f"{value:.3f}x",
                    verdict(value <= 1.15),
                ]
            )
    rows.append(["rate-limited: 0 failed", f"{failed:.0f} failed", verdict(failed == 0)])
    rows.append(
        ["rate-limited: >= 90% budget used", f"{budget:.0%} (worst)", verdict(budget >= 0.9)]
    )
    rows.append(["`runner --help` < 150 ms", f"{help_s * 1000:.0f} ms", verdict(help_s < 0.15)])
    rows.append(["validate 1,000 specs < 2 s", f"{validate_s:.2f} s", verdict(validate_s < 2)])
    scale = results.get("cases_scale") or []
    if scale:
        peak = max(row["peak_mb"] for row in scale)
        rows.append(["cases at scale: peak < 200 MB", f"{peak:.0f} MB", verdict(peak < 200)])
        growth = scale[-1]["peak_mb"] - scale[0]["peak_mb"]
        rows.append(
            [
                "cases at scale: memory flat in the rows",
                f"{growth:+.0f} MB from {scale[0]['rows']:,.0f} to {scale[-1]['rows']:,.0f} rows",
                verdict(growth < 10),
            ]
        )
    return "### Targets (runner)\n\n" + table(["target", "measured", "result"], rows)


def render(config: Any, results: dict[str, Any]) -> str:
    """All sections, in the order they ran, then the targets."""
    ideal = config.conc_n / config.conc_c * config.latency
    peers = (
        "promptfoo included"
        if "promptfoo" in results["sequential"]
        else ("promptfoo not installed, so not measured (see bench/promptfoo_client.py)")
    )
    sections = [
        f"rounds: {config.rounds} (medians), stub server: {config.server}; {peers}",
        server_section(results["server"], config.server_n),
        sequential_section(results["sequential"], config.seq_n),
        concurrent_section(results["concurrent"], config.conc_n, config.conc_c, ideal),
        rate_section(
            results["rate_limited"], config.rl_limit, config.rl_window, config.rl_n, config.rl_c
        ),
        structured_section(results["structured"], config.struct_n),
        startup_section(results["startup"]),
        scale_section(results["cases_scale"]),
        targets_section(config, results),
    ]
    return "\n\n".join(sections) + "\n"
