"""The baseline clients, each run as its own process by bench/run.py.

    python bench/clients.py raw|groq|openai --base-url http://127.0.0.1:PORT --n N [-c C]
        [--structured]

Sends requests ``0..n-1`` (see workload.py), checks each answer, and prints one JSON line:
``{"ok": n, "seconds": send_phase_seconds}``. With ``--structured`` each answer's content is
parsed with json.loads and validated against the schema with a jsonschema validator built once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

Send = Callable[[dict[str, Any]], str]


def raw_sender(base_url: str, concurrency: int) -> Send:
    """urllib3 + json.dumps/json.loads: the floor for a Python client."""
    import urllib3

    pool = urllib3.PoolManager(maxsize=concurrency, retries=False)
    url = f"{base_url}/v1/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer k"}

    def send(body: dict[str, Any]) -> str:
        response = pool.request("POST", url, body=json.dumps(body).encode(), headers=headers)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return json.loads(response.data)["choices"][0]["message"]["content"]

    return send


def groq_sender(base_url: str, concurrency: int) -> Send:
    """The official groq SDK; it appends /openai/v1/chat/completions to base_url itself."""
    from groq import Groq

    client = Groq(api_key="k", base_url=base_url, max_retries=0)

    def send(body: dict[str, Any]) -> str:
        return client.chat.completions.create(**body).choices[0].message.content or ""

    return send


def openai_sender(base_url: str, concurrency: int) -> Send:
    """The official openai SDK; base_url ends in /v1 and it appends /chat/completions."""
    from openai import OpenAI

    client = OpenAI(api_key="k", base_url=f"{base_url}/v1", max_retries=0)

    def send(body: dict[str, Any]) -> str:
        return client.chat.completions.create(**body).choices[0].message.content or ""

    return send


SENDERS: dict[str, Callable[[str, int], Send]] = {
    "raw": raw_sender,
    "groq": groq_sender,
    "openai": openai_sender,
}


def checking(send: Send) -> Send:
    """Wrap ``send`` so each answer is parsed as JSON and validated against the schema."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(workload.PROFILE_SCHEMA)

    def send_and_check(body: dict[str, Any]) -> str:
        content = send(body)
        validator.validate(json.loads(content))
        return content

    return send_and_check


def send_all(send: Send, bodies: list[dict[str, Any]], concurrency: int) -> int:
    """Send every body (in ``concurrency`` threads) and return how many got an answer."""
    if concurrency == 1:
        return sum(1 for body in bodies if send(body) is not None)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return sum(1 for answer in pool.map(send, bodies) if answer is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client", choices=sorted(SENDERS))
    parser.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT (no /v1)")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("--structured", action="store_true")
    args = parser.parse_args()
    send = SENDERS[args.client](args.base_url, args.concurrency)
    if args.structured:
        send = checking(send)
    bodies = [workload.request_body(i, args.structured) for i in range(args.n)]
    started = time.perf_counter()
    ok = send_all(send, bodies, args.concurrency)
    print(json.dumps({"ok": ok, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
