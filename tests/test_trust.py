"""Keys go only where the person running runner chose (runner/providers/trust.py, runner
trust): a cloned project naming its own server and key sends nothing until approved; the
approval is void when the declaration changes; a nested project needs its own; the user's
--api-key-env never follows a server that only the spec names. Every test here has its own
empty XDG_CONFIG_HOME (conftest.py), so nothing reads or writes the real home folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import KEY, KEY_ENV, run_args, without_codes, write_spec

SECRET = "AKIA-not-for-this-spec-42"
SPEC = """\
version: 1
model: openai/gpt-oss-20b
provider:
  name: their-proxy
  base_url: {url}
  api_key_env: {env}
messages:
  - {{role: user, content: Hi.}}
"""


def foreign_spec(
    folder: Path, url: str, env: str = "AWS_SECRET_ACCESS_KEY", name: str = "foreign"
) -> Path:
    (folder / "specs").mkdir(parents=True, exist_ok=True)
    path = folder / "specs" / f"{name}.yaml"
    path.write_text(SPEC.format(url=url, env=env))
    return path


def declare(folder: Path, url: str, env: str = "AWS_SECRET_ACCESS_KEY") -> None:
    (folder / "runner.yaml").write_text(
        f"version: 1\nendpoints:\n  - base_url: {url}\n    api_key_env: {env}\n"
    )


def host(server) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    return SECRET


def test_a_cloned_project_naming_its_own_server_and_key_sends_nothing(
    project, run_cli, openai_server, secret
):
    """Issue 22, keys 1: the project's own runner.yaml (old allow-list and new declaration
    alike) cannot send the key anywhere; the message says what would go where, and how to
    approve it."""
    foreign_spec(project, openai_server.base_url)
    (project / "runner.yaml").write_text(
        "version: 1\nallow_key_env: [AWS_SECRET_ACCESS_KEY]\nendpoints:\n"
        f"  - {{base_url: {openai_server.base_url}, api_key_env: AWS_SECRET_ACCESS_KEY}}\n"
    )

    run = run_cli("run", "specs", "--out", "runs")

    assert run.exit_code == 2, run.output
    assert openai_server.count == 0
    assert not (project / "runs").exists()
    assert (
        f"specs/foreign.yaml would send the key in $AWS_SECRET_ACCESS_KEY to {host(openai_server)}"
        f", which {project / 'runner.yaml'} declares, and you have not approved its endpoints; "
        f"nothing was sent. If you trust this project, approve them with: runner trust {project}"
    ) in run.output
    assert secret not in run.output


def test_a_spec_naming_a_server_the_project_does_not_declare_says_how_to_choose_it(
    project, run_cli, openai_server, secret
):
    foreign_spec(project, openai_server.base_url)

    run = run_cli("run", "specs", "--out", "runs")

    assert run.exit_code == 2 and openai_server.count == 0
    assert (
        f"a server that only the spec names; nothing was sent. A spec cannot choose where a key "
        f"goes. To send it there, choose it yourself: give --base-url {openai_server.base_url} "
        "--api-key-env AWS_SECRET_ACCESS_KEY"
    ) in run.output
    assert secret not in run.output


def test_runner_trust_approves_the_declaration_and_the_key_is_sent(
    project, run_cli, openai_server, secret, user_config_folder
):
    foreign_spec(project, openai_server.base_url)
    declare(project, openai_server.base_url)

    trusted = run_cli("trust", str(project))
    run = run_cli("run", "specs", "--out", "runs", "--quiet")

    assert trusted.exit_code == 0, trusted.output
    assert trusted.output.splitlines()[:2] == [
        f"trusted {project}: its specs may send",
        f"  $AWS_SECRET_ACCESS_KEY -> {host(openai_server)}",
    ]
    assert (user_config_folder / "runner" / "trusted.json").stat().st_mode & 0o777 == 0o600
    assert not list(project.glob("*.json"))  # the approval is kept outside the project
    assert run.exit_code == 0, run.output
    (received,) = openai_server.received
    assert received.headers["authorization"] == f"Bearer {secret}"


def test_a_changed_declaration_voids_the_approval(project, run_cli, openai_server, secret):
    foreign_spec(project, openai_server.base_url)
    declare(project, "http://127.0.0.1:9/v1")
    assert run_cli("trust").exit_code == 0  # approves the folder it runs in
    declare(project, openai_server.base_url)  # the server changed after the approval

    run = run_cli("run", "specs", "--out", "runs")

    assert run.exit_code == 2 and openai_server.count == 0
    assert "its endpoints changed since you approved them; nothing was sent" in run.output
    assert run_cli("trust").exit_code == 0
    assert run_cli("run", "specs", "--out", "runs", "-q").exit_code == 0
    assert openai_server.count == 1


def test_revoke_withdraws_the_approval(project, run_cli, openai_server, secret):
    foreign_spec(project, openai_server.base_url)
    declare(project, openai_server.base_url)
    run_cli("trust")

    revoked = run_cli("trust", "--revoke")
    run = run_cli("run", "specs", "--out", "runs")
    again = run_cli("trust", "--revoke")

    assert revoked.exit_code == 0 and f"no longer trusted: {project}" in revoked.output
    assert run.exit_code == 2 and openai_server.count == 0
    assert again.exit_code == 2 and "was not trusted: nothing to revoke" in again.output


def test_an_untrusted_folder_inside_a_trusted_one_cannot_widen_what_is_sent(
    project, run_cli, openai_server, secret, monkeypatch
):
    """The user trusted the outer project (PROXY_KEY to its server). A vendored folder with a
    runner.yaml of its own is its own project: its declaration needs its own approval, and
    the outer approval does not reach it, nor a folder that is a project by its .git."""
    monkeypatch.setenv("PROXY_KEY", "proxy-key-1")
    declare(project, openai_server.base_url, "PROXY_KEY")
    assert run_cli("trust").exit_code == 0
    vendored = project / "vendor" / "prompts"
    vendored.mkdir(parents=True)
    foreign_spec(vendored, openai_server.base_url)
    declare(vendored, openai_server.base_url)  # declares AWS_SECRET_ACCESS_KEY
    cloned = project / "vendor" / "cloned"
    (cloned / ".git").mkdir(parents=True)
    foreign_spec(cloned, openai_server.base_url, "PROXY_KEY")
    inside = project / "mine"
    foreign_spec(inside, openai_server.base_url, "PROXY_KEY", name="mine")

    from_vendored = run_cli("run", str(vendored / "specs"), "--out", "runs")
    from_cloned = run_cli("run", str(cloned / "specs"), "--out", "runs")
    from_both = run_cli("run", str(inside / "specs"), str(vendored / "specs"), "--out", "runs")

    assert from_vendored.exit_code == 2 and f"runner trust {vendored}" in from_vendored.output
    assert from_cloned.exit_code == 2
    assert "$PROXY_KEY" in from_cloned.output and "only the spec names" in from_cloned.output
    assert from_both.exit_code == 2, from_both.output  # the trusted spec does not carry it
    assert openai_server.count == 0
    assert secret not in from_vendored.output + from_cloned.output + from_both.output
    # a folder of the trusted project without a marker of its own is part of it
    assert run_cli("run", str(inside / "specs"), "--out", "runs", "-q").exit_code == 0
    assert openai_server.received[0].headers["authorization"] == "Bearer proxy-key-1"


def test_the_users_api_key_env_never_goes_to_a_server_only_the_spec_names(
    project, run_cli, openai_server, monkeypatch
):
    """Issue 22, keys 2."""
    monkeypatch.setenv("MY_KEY", "my-key-77")
    (project / "specs").mkdir()
    (project / "specs" / "s.yaml").write_text(
        "version: 1\nmodel: m\nprovider: {name: their-proxy, base_url: "
        f"{openai_server.base_url}}}\nmessages: [{{role: user, content: Hi.}}]\n"
    )

    refused = run_cli("run", "specs", "--out", "runs", "--api-key-env", "MY_KEY")

    assert refused.exit_code == 2 and openai_server.count == 0
    assert f"would send the key in $MY_KEY to {host(openai_server)}" in refused.output
    assert "(the key variable is the one you gave with --api-key-env)" in refused.output
    assert "my-key-77" not in refused.output
    chosen = ["--base-url", openai_server.base_url, "--api-key-env", "MY_KEY", "-q"]
    assert run_cli("run", "specs", "--out", "runs", *chosen).exit_code == 0
    assert openai_server.received[0].headers["authorization"] == "Bearer my-key-77"


def test_a_builtin_key_goes_only_to_its_own_server(project, run_cli, openai_server, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk-real-key")
    foreign_spec(project, openai_server.base_url, "GROQ_API_KEY")

    run = run_cli("run", "specs", "--out", "runs")

    assert run.exit_code == 2 and openai_server.count == 0
    assert "gsk-real-key" not in run.output


def test_the_user_config_chooses_servers_for_every_project(
    project, run_cli, openai_server, secret, user_config_folder
):
    foreign_spec(project, openai_server.base_url)
    (user_config_folder / "runner").mkdir()
    (user_config_folder / "runner" / "config.yaml").write_text(
        f"endpoints:\n  - base_url: {host(openai_server)}/\n"
        "    api_key_env: AWS_SECRET_ACCESS_KEY\n"
    )

    run = run_cli("run", "specs", "--out", "runs", "-q")

    assert run.exit_code == 0, run.output
    assert openai_server.received[0].headers["authorization"] == f"Bearer {secret}"


def test_a_broken_user_config_is_reported_at_its_line(
    project, run_cli, openai_server, secret, user_config_folder
):
    foreign_spec(project, openai_server.base_url)
    (user_config_folder / "runner").mkdir()
    config = user_config_folder / "runner" / "config.yaml"
    config.write_text("endpoint:\n  - {base_url: x}\n")

    run = run_cli("run", "specs", "--out", "runs")

    assert run.exit_code == 2 and openai_server.count == 0
    assert f"{config}:1:1: unknown setting 'endpoint' in runner's config.yaml" in run.output


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (f"{SECRET}\nX-Other: 1", "a line break at character 26 of 36"),
        (f"{SECRET}\u2019x", "a character that cannot go in an HTTP header (outside Latin-1)"),
        (f"{SECRET}\x1b[0m", "a control character at character 26 of 29"),
    ],
)
def test_a_key_that_cannot_be_a_header_is_a_clear_error_that_never_shows_it(
    project, run_cli, openai_server, monkeypatch, value, kind
):
    """Issue 22, keys 3: it was a traceback that printed the key."""
    monkeypatch.setenv("BAD_KEY", value)
    (project / "specs").mkdir()
    (project / "specs" / "s.yaml").write_text(
        "version: 1\nmodel: m\nmessages: [{role: user, content: Hi.}]\n"
    )
    chosen = ["--base-url", openai_server.base_url, "--api-key-env", "BAD_KEY"]

    run = run_cli("run", "specs", "--out", "runs", *chosen)

    assert run.exit_code == 2 and openai_server.count == 0
    assert f"the environment variable BAD_KEY holds {kind}" in run.output
    assert "set it to the key alone (export BAD_KEY=...)" in run.output
    assert SECRET not in run.stdout + run.stderr


def test_render_and_validate_send_nothing_so_need_no_approval(
    project, run_cli, openai_server, secret
):
    """Issue 27, item 8: the key check belongs where requests get their keys."""
    foreign_spec(project, openai_server.base_url)

    rendered = run_cli("render", "specs/foreign.yaml")
    validated = run_cli("validate", "specs")
    planned = run_cli("run", "specs", "--dry-run")

    assert rendered.exit_code == 0, rendered.output
    assert validated.exit_code == 0, validated.output
    assert planned.exit_code == 0, planned.output
    assert openai_server.count == 0


def test_the_old_allow_list_says_what_replaced_it(project, run_cli, openai_server, secret):
    foreign_spec(project, openai_server.base_url)
    (project / "runner.yaml").write_text("version: 1\nallow_key_env: [AWS_SECRET_ACCESS_KEY]\n")

    validated = run_cli("validate", "specs")
    option = run_cli("run", "specs", "--allow-key-env", "AWS_SECRET_ACCESS_KEY")

    assert validated.exit_code == 0
    assert without_codes(validated.stdout).splitlines() == [
        "runner.yaml:2:1: warning: allow_key_env no longer lets specs send keys: a project "
        "cannot choose where your keys go (declare each server and its key under endpoints: "
        "(e.g. endpoints: - {base_url: https://llm.example.com/v1, api_key_env: MY_PROXY_KEY}), "
        f"then approve the declaration once with: runner trust {project})"
    ]
    assert option.exit_code == 2 and "--allow-key-env" in option.output
    assert "runner trust DIR" in option.output and openai_server.count == 0


def test_trust_refuses_a_project_that_declares_nothing(project, run_cli):
    assert "has no runner.yaml" in run_cli("trust").output
    (project / "runner.yaml").write_text("version: 1\n")
    result = run_cli("trust")
    assert result.exit_code == 2 and "declares no endpoints: nothing to trust" in result.output


def test_a_wrong_endpoint_declaration_is_reported_at_its_line(project, run_cli):
    (project / "runner.yaml").write_text(
        "version: 1\nendpoints:\n  - {base_url: 'ftp://x', api_key_env: K}\n"
        "  - {base_url: 'https://x', api_key_env: 'not a name'}\n"
    )

    result = run_cli("trust")

    assert result.exit_code == 1
    assert without_codes(result.output).splitlines() == [
        "runner.yaml:3:16: each endpoint needs a base_url: an http:// or https:// address "
        "(e.g. - {base_url: https://llm.example.com/v1, api_key_env: MY_PROXY_KEY})",
        "runner.yaml:4:42: each endpoint needs an api_key_env: the NAME of the environment "
        "variable that holds its key (e.g. - {base_url: https://llm.example.com/v1, "
        "api_key_env: MY_PROXY_KEY})",
    ]


def test_a_new_project_runs_offline_with_no_approval(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("init", "p").exit_code == 0
    monkeypatch.chdir(tmp_path / "p")

    result = run_cli("run", "specs", "--provider", "offline", "--out", "runs", "-q")

    assert result.exit_code == 0, result.output
    assert "trust" not in result.output


# ---- run folders: a resume or a batch command reads its server from the run folder


@pytest.fixture
def attacker():
    """A second local server: where a hostile run folder would send the key."""
    from openai_server import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_run_folder_cannot_choose_where_a_resume_sends_the_key(
    project, run_cli, openai_server, attacker, monkeypatch
):
    """A resume used to take the run folder's --base-url and --api-key-env as the user's
    choice: a run folder handed over (or edited) could send the key anywhere."""
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "plain")
    assert run_cli(*run_args(openai_server.base_url), "-q", "--no-cache").exit_code == 0
    (run_dir,) = (project / "runs").iterdir()

    def interrupted(base_url: str, claimed: str | None = None):
        def change(manifest):
            manifest["status"] = "interrupted"
            manifest["settings"]["provider"]["base_url"] = base_url
            if claimed:  # a folder that claims to be another run the user started
                manifest["settings"]["provider"]["run_dir"] = claimed

        _edit_json(run_dir / "manifest.json", change)
        (run_dir / "results.jsonl").write_text("")

    interrupted(attacker.base_url, claimed=str(run_dir))
    refused = run_cli("run", "--resume", str(run_dir))
    interrupted(openai_server.base_url)
    resumed = run_cli("run", "--resume", str(run_dir), "-q")

    assert refused.exit_code == 2 and attacker.count == 0
    assert (
        f"specs/plain.yaml would send the key in ${KEY_ENV} to {host(attacker)}, as the run "
        f"folder {run_dir} says, and that run was not started with that server here"
    ) in refused.output
    assert KEY not in refused.output
    assert resumed.exit_code == 0, resumed.output  # the server it was started with
    assert openai_server.count == 2


def test_a_moved_run_folder_resumes_once_the_user_gives_its_server_again(
    project, run_cli, openai_server, monkeypatch
):
    """The server a run was started with is remembered for its folder; a folder moved (or
    made before) needs it chosen again: --base-url and --api-key-env with --resume, which
    must be the run's own."""
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "plain")
    assert run_cli(*run_args(openai_server.base_url), "-q", "--no-cache").exit_code == 0
    (started,) = (project / "runs").iterdir()
    moved = project / "moved"
    started.rename(moved)
    _edit_json(moved / "manifest.json", lambda m: m.update(status="interrupted"))
    (moved / "results.jsonl").write_text("")
    mine = ["--base-url", openai_server.base_url, "--api-key-env", KEY_ENV]

    refused = run_cli("run", "--resume", str(moved))
    other = run_cli("run", "--resume", str(moved), "--base-url", "http://127.0.0.1:9/v1")
    resumed = run_cli("run", "--resume", str(moved), *mine, "-q")
    (moved / "results.jsonl").write_text("")
    _edit_json(moved / "manifest.json", lambda m: m.update(status="interrupted"))
    again = run_cli("run", "--resume", str(moved), "-q")  # remembered now

    assert refused.exit_code == 2
    assert "a resume (runner run --resume RUN) may instead be given the run's own" in (
        refused.output
    )
    assert other.exit_code == 2
    assert "this run was started with --base-url " + openai_server.base_url in other.output
    assert resumed.exit_code == 0, resumed.output
    assert again.exit_code == 0, again.output
    assert openai_server.count == 3


def test_a_batch_state_cannot_choose_where_the_key_goes(
    project, run_cli, openai_server, attacker, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, KEY)
    write_spec(project, "plain")
    args = ["batch", "submit", "specs", "--base-url", openai_server.base_url]
    result = run_cli(*args, "--api-key-env", KEY_ENV, "--out", "runs", "--json")
    assert result.exit_code == 0, result.output
    run_dir = Path(json.loads(result.stdout)["summary"]["run_dir"])
    state = run_dir / "batch" / "state.json"

    def point_at(base_url: str):
        def change(data):
            for part in data["parts"]:
                part["provider"]["base_url"] = base_url

        _edit_json(state, change)

    point_at(attacker.base_url)
    refused = [run_cli("batch", command, str(run_dir)) for command in ("status", "cancel")]
    point_at(openai_server.base_url)
    status = run_cli("batch", "status", str(run_dir))

    for result in refused:
        assert result.exit_code == 2, result.output
        assert f"a batch would send the key in ${KEY_ENV} to {host(attacker)}" in result.output
        assert KEY not in result.output
    assert attacker.batches.calls == []
    assert status.exit_code == 0, status.output


def test_runs_starting_at_once_all_keep_their_record(tmp_path):
    """trusted.json is rewritten whole: without its lock file, two runs starting together
    would keep only one record, and the other's resume would stop."""
    from concurrent.futures import ThreadPoolExecutor

    from runner.providers.trust import _read_store, remember_run

    folders = [tmp_path / f"run-{i}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: remember_run(f, [("K", "http://127.0.0.1:9/v1")]), folders))

    runs = _read_store()["runs"]
    assert all(runs[str(f.resolve())] == [["K", "http://127.0.0.1:9"]] for f in folders)


def test_the_check_reads_a_url_as_the_request_does():
    """Python's urlsplit reads http://A\\@B/ as server B, urllib3 connects to A: a check by
    the one and a request by the other sent the key to A while B was the server trusted
    (before validation refused such URLs, a run sent the request to A)."""
    from runner.providers.trust import origin

    assert origin("https://evil.example\\@api.groq.com/openai/v1") == "https://evil.example"
    assert origin("http://127.0.0.1:9\\@127.0.0.1:8/v1") == "http://127.0.0.1:9"
    assert origin("HTTPS://API.Groq.com:443/openai/v1") == "https://api.groq.com"
    assert origin("http://[::1]:8000/v1") == "http://[::1]:8000"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{a}\\@127.0.0.1:{t}/v1", "http://u:p@127.0.0.1:{a}/v1"]
)
def test_a_base_url_that_programs_read_as_different_servers_is_refused(
    project, run_cli, openai_server, attacker, secret, user_config_folder, url
):
    (user_config_folder / "runner").mkdir()
    (user_config_folder / "runner" / "config.yaml").write_text(
        f"endpoints:\n  - base_url: {openai_server.base_url}\n"
        "    api_key_env: AWS_SECRET_ACCESS_KEY\n"
    )
    foreign_spec(project, "'" + url.format(a=attacker.port, t=openai_server.port) + "'")

    validated = run_cli("validate", "specs")
    run = run_cli("run", "specs", "--out", "runs")

    assert validated.exit_code == 1 and run.exit_code == 1
    assert "base_url has user info or a backslash before its path" in validated.output
    assert attacker.count == 0 and openai_server.count == 0
    assert secret not in run.output


def test_an_endpoint_declaration_with_user_info_is_refused(project, run_cli):
    declare(project, "https://user:pw@llm.example.com/v1")
    result = run_cli("trust")
    assert result.exit_code == 1 and "each endpoint needs a base_url" in result.output


def test_trust_list_shows_each_approved_project_and_what_it_may_send(project, run_cli):
    declare(project, "https://llm.example.com/v1", "PROXY_KEY")
    assert run_cli("trust", "--list").output == ""
    run_cli("trust")

    listed = run_cli("trust", "--list")

    assert listed.output == f"{project}: $PROXY_KEY -> https://llm.example.com\n"


def test_the_api_refuses_the_old_allow_list_too(project):
    import runner
    from runner.errors import UsageError

    with pytest.raises(UsageError, match="runner trust DIR"):
        runner.validate_specs("specs", allow_key_env=["AWS_SECRET_ACCESS_KEY"])
