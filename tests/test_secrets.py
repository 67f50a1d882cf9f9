"""The API key stays secret: not in any file of a run, not on stdout or stderr, not sent to
another host after a redirect; and TLS certificates are always verified.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_json_spec as write_spec

KEY_ENV = "RUNNER_TEST_KEY"
KEY = "sk-live-SECRET-4c1d9e7a2b3f5a6e8d0c"
RUNNER = Path(__file__).resolve().parents[1] / "runner"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_key_nowhere(project: Path, *outputs: str) -> int:
    """The key is in no output and in no file under runs/; returns how many files were read."""
    for output in outputs:
        assert KEY not in output
    files = [p for p in (project / "runs").rglob("*") if p.is_file()]
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
    return len(files)


@pytest.fixture
def keyed(project, monkeypatch, openai_server):
    monkeypatch.setenv(KEY_ENV, KEY)
    openai_server.handle_error = lambda request, client_address: None
    return project


def run(run_cli, base_url: str, *extra: str):
    return run_cli(
        "run",
        "specs",
        "--base-url",
        base_url,
        "--api-key-env",
        KEY_ENV,
        "--out",
        "runs",
        "--backoff",
        "0.01",
        *extra,
    )


@pytest.mark.parametrize(
    ("case", "faults", "extra", "status"),
    [
        ("success", (), (), "ok"),
        ("unauthorized", ("401",), (), "failed"),
        ("server-errors", ("500",) * 3, ("--retries", "2"), "failed"),
        ("timeout", ("slow", "slow"), ("--timeout", "0.2", "--retries", "1"), "failed"),
        ("invalid-output", ('reply:{"content": "no json here"}',), (), "invalid_output"),
        ("provider-error", ("error_200",), (), "failed"),
    ],
)
@pytest.mark.parametrize("output", ["--json", "--quiet", "human"])
def test_the_key_is_in_no_file_and_no_output(
    keyed, run_cli, openai_server, case, faults, extra, status, output
):
    openai_server.slow_seconds = 0.5
    write_spec(keyed, case, response_format={"type": "json_object"})
    if faults:
        openai_server.plan(*faults)

    result = run(run_cli, openai_server.base_url, *extra, *([output] if output != "human" else []))

    assert openai_server.received[0].headers["authorization"] == f"Bearer {KEY}"
    assert assert_key_nowhere(keyed, result.stdout, result.stderr) == 2  # manifest, results
    record = next((keyed / "runs").rglob("results.jsonl")).read_text()
    assert f'"status": "{status}"' in record


def test_connection_refused_does_not_show_the_key(keyed, run_cli):
    write_spec(keyed, "refused")

    result = run(run_cli, f"http://127.0.0.1:{free_port()}/v1", "--retries", "1")

    assert result.exit_code == 1
    assert "connection refused" in result.stderr
    assert assert_key_nowhere(keyed, result.stdout, result.stderr) == 2  # manifest, results


def test_a_subprocess_run_prints_no_key_even_in_library_warnings(keyed, openai_server):
    """urllib3 logs retries on stderr when run as a program; those lines must not hold the key."""
    write_spec(keyed, "retried")
    openai_server.plan("reset", "503", "401")
    env = {**os.environ, KEY_ENV: KEY}
    command = [sys.executable, "-m", "runner", "run", "specs", "--base-url"]
    command += [openai_server.base_url, "--api-key-env", KEY_ENV, "--backoff", "0.01"]

    done = subprocess.run(command, cwd=keyed, env=env, capture_output=True, text=True, timeout=30)

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert assert_key_nowhere(keyed, done.stdout, done.stderr) == 2  # manifest, results


def test_a_key_given_on_the_command_line_is_refused_not_echoed(keyed, run_cli, openai_server):
    """--api-key-env takes a variable name; pasting the key itself must not print it back."""
    write_spec(keyed, "pasted")

    result = run_cli("run", "specs", "--base-url", openai_server.base_url, "--api-key-env", KEY)

    assert result.exit_code == 2
    assert openai_server.count == 0
    assert KEY not in result.output, result.output


@pytest.mark.parametrize("label", ["groq", "openai", "offline"])
def test_a_spec_cannot_send_a_built_in_provider_s_key_to_its_own_url(
    project, run_cli, openai_server, monkeypatch, label
):
    """A spec from someone else's repository names 'groq' but points at its own server."""
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    write_spec(project, "stealer", provider={"name": label, "base_url": openai_server.base_url})

    result = run_cli("run", "specs", "--out", "runs")

    assert result.exit_code == 1, result.output
    assert openai_server.count == 0
    assert "specs/stealer.yaml:8:9: " in result.stderr and "built-in provider" in result.stderr
    assert KEY not in result.output


# ---- redirects


@pytest.mark.parametrize("other_host", ["localhost", "127.0.0.1"])
def test_a_redirect_is_not_followed_so_neither_key_nor_prompt_leaves(
    keyed, run_cli, openai_server, other_host
):
    from openai_server import FakeOpenAI

    other = FakeOpenAI().start()
    try:
        write_spec(keyed, "moved")
        target = f"http://{other_host}:{other.port}/v1/chat/completions"
        openai_server.plan(f"redirect:{target}")

        result = run(run_cli, openai_server.base_url)

        assert openai_server.received[0].headers["authorization"] == f"Bearer {KEY}"
        assert other.received == []
        assert result.exit_code == 1
        assert "does not follow redirects" in result.output and target in result.output
        assert_key_nowhere(keyed, result.stdout, result.stderr)
    finally:
        other.stop()


# ---- TLS


def test_tls_verification_cannot_be_turned_off():
    """No source file of the runner can disable certificate checks, and no option says so."""
    source = "\n".join(p.read_text() for p in RUNNER.glob("*.py"))
    transport = (RUNNER / "send" / "transport.py").read_text()
    assert 'cert_reqs="CERT_REQUIRED"' in transport
    for pattern in (
        r"CERT_NONE",
        r"cert_reqs\s*=\s*(?!\"CERT_REQUIRED\")",
        r"check_hostname\s*=\s*False",
        r"assert_hostname\s*=\s*False",
        r"verify\s*=\s*False",
        r"_create_unverified_context",
        r"disable_warnings",
        r"InsecureRequestWarning",
    ):
        assert not re.search(pattern, source), pattern
    from runner.cli.run import run as run_command

    options = [o for p in run_command.params for o in p.opts]
    assert not [o for o in options if re.search("insecure|verify|tls|ssl|cert", o)]
    assert not re.search(r"RUNNER_[A-Z_]*(INSECURE|VERIFY|TLS|SSL|CERT)", source)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed; cannot make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out"),
            *(str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
def tls_server(self_signed):
    from openai_server import FakeOpenAI

    cert, key = self_signed
    server = FakeOpenAI()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda request, client_address: None
    server.start()
    yield server
    server.stop()


def test_a_self_signed_certificate_is_refused(keyed, run_cli, tls_server, monkeypatch):
    for variable in ("PYTHONHTTPSVERIFY", "CURL_INSECURE", "NODE_TLS_REJECT_UNAUTHORIZED"):
        monkeypatch.setenv(variable, "0")
    write_spec(keyed, "tls")

    result = run(run_cli, f"https://127.0.0.1:{tls_server.port}/v1", "--retries", "0")

    assert result.exit_code == 1
    assert tls_server.count == 0  # nothing, not even the key, went over the unverified link
    assert "TLS certificate verification failed" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert_key_nowhere(keyed, result.stdout, result.stderr)
