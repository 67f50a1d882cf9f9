"""runner where POSIX is missing: the offline walkthrough (run, resume after a kill, show,
report, export, diff, score, replay, batch) in a Python that lacks what Windows lacks.

The walkthrough runs in subprocesses whose ``sitecustomize`` (SITECUSTOMIZE, on PYTHONPATH)
removes the POSIX-only functions of ``os`` and the POSIX signals, hides ``fcntl``,
``resource``, ``termios``, ``pwd`` and ``grp``, refuses ``os.open`` on a folder and refuses
replacing or deleting a file that is open, as Windows does. ``msvcrt.locking`` stands in for
Windows' own (built on flock), so the run lock takes its Windows path. ``sys.platform`` stays
what it is: code that asks for "win32" by name is not exercised here, only code that finds out
what exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent

SITECUSTOMIZE = '''\
"""This Python without what Windows lacks: POSIX-only functions of os, POSIX signals, the
fcntl, resource, termios, pwd and grp modules; folders that os.open cannot open; files that
cannot be replaced or deleted while open. msvcrt.locking stands in for Windows' own."""

import builtins
import fcntl as _fcntl
import io
import os
import signal
import sys
import types
import weakref

for name in (
    "pread", "pwrite", "preadv", "pwritev", "fork", "forkpty", "getuid", "geteuid", "getgid",
    "getegid", "getgroups", "setuid", "setsid", "getpgid", "setpgid", "killpg", "getloadavg",
    "sched_getaffinity", "fdatasync", "statvfs", "fstatvfs", "mkfifo", "mknod", "chown",
    "fchown", "lchown", "fchmod", "lchmod", "chroot", "nice", "uname", "sync", "posix_fadvise",
    "posix_fallocate", "sendfile", "O_NOFOLLOW", "O_DIRECTORY", "O_CLOEXEC", "O_NONBLOCK",
    "getpriority", "setpriority", "openpty", "ttyname",
):
    if hasattr(os, name):
        delattr(os, name)

WINDOWS_SIGNALS = {"SIGINT", "SIGTERM", "SIGABRT", "SIGFPE", "SIGILL", "SIGSEGV", "SIGBREAK"}
for name in dir(signal):
    if name.startswith("SIG") and not name.startswith("SIG_") and name not in WINDOWS_SIGNALS:
        delattr(signal, name)
for name in ("alarm", "setitimer", "getitimer", "pause", "pthread_kill", "pthread_sigmask",
             "sigwait", "sigpending", "siginterrupt", "sigtimedwait", "sigwaitinfo"):
    if hasattr(signal, name):
        delattr(signal, name)


def _locking(fd, mode, nbytes):
    """msvcrt.locking: LK_NBLCK locks or raises OSError at once; LK_UNLCK unlocks."""
    if mode == 2:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    elif mode == 0:
        _fcntl.flock(fd, _fcntl.LOCK_UN)
    else:
        raise ValueError(mode)


import getpass, subprocess  # noqa: E401  they take msvcrt for a sign of Windows

sys.modules["msvcrt"] = types.SimpleNamespace(locking=_locking, LK_UNLCK=0, LK_LOCK=1,
                                              LK_NBLCK=2, LK_RLCK=3, LK_NBRLCK=4)

HIDDEN = {"fcntl", "resource", "termios", "tty", "pty", "pwd", "grp"}


class HiddenModules:
    def find_spec(self, name, path=None, target=None):
        if name in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


for name in HIDDEN:
    sys.modules.pop(name, None)
sys.meta_path.insert(0, HiddenModules())

_open_files = weakref.WeakValueDictionary()
_io_open, _os_open = io.open, os.open


def _open(file, *args, **kwargs):
    handle = _io_open(file, *args, **kwargs)
    if isinstance(file, (str, bytes, os.PathLike)):
        handle._opened_as = os.path.realpath(file)
        _open_files[id(handle)] = handle
    return handle


def _open_fd(path, flags, mode=0o777, *, dir_fd=None):
    if os.path.isdir(path):  # Windows: a folder is not a file
        raise PermissionError(13, "Permission denied", str(path))
    return _os_open(path, flags, mode, dir_fd=dir_fd)


def _unless_open(call):
    def guarded(*paths, **kwargs):
        for path in paths[:2]:
            real = os.path.realpath(path)
            if any(getattr(f, "_opened_as", None) == real and not f.closed
                   for f in list(_open_files.values())):
                raise PermissionError(13, "The process cannot access the file because it "
                                      "is being used by another process", str(path))
        return call(*paths, **kwargs)
    return guarded


builtins.open = io.open = _open
os.open = _open_fd
os.replace, os.rename = _unless_open(os.replace), _unless_open(os.rename)
os.unlink, os.remove = _unless_open(os.unlink), _unless_open(os.remove)
'''


@pytest.fixture
def posixless(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the example project, and an environment whose Python lacks POSIX (on
    Windows, the real one)."""
    site = tmp_path / "site"
    site.mkdir()
    if os.name != "nt":
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    project = tmp_path / "project"
    for folder in ("specs", "schemas", "templates"):
        shutil.copytree(ROOT / folder, project / folder)
    (project / "pyproject.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env.update(
        PYTHONPATH=str(site),
        RUNNER_CACHE_DIR=str(tmp_path / "cache"),
        PYTHONIOENCODING="utf-8",
    )
    return project, env


def runner(project: Path, env: dict[str, str], *args: str, code: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == code, f"runner {' '.join(args)}: {done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout + done.stderr


def saved_in(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("saved in ")).split()[-1]


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text("utf-8").splitlines()]


def test_the_sitecustomize_takes_posix_away(posixless):
    _, env = posixless
    probe = (
        "import os, signal\n"
        "assert not any(hasattr(os, n) for n in ('pread', 'pwrite', 'fork', 'getuid'))\n"
        "assert not hasattr(signal, 'SIGHUP') and not hasattr(signal, 'SIGPIPE')\n"
        "for name in ('fcntl', 'resource'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(name)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_offline_walkthrough_without_posix(posixless):
    project, env = posixless
    first = saved_in(runner(project, env, "run", "specs/", "--provider", "offline"))
    assert len(records(project / first)) == 33
    assert (project / first / ".runner.lock").exists() is False

    # Killed while it runs (streamed answers, slowed down), then resumed.
    slow = project / "slow" / "slow.yaml"
    slow.parent.mkdir()
    slow.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "name": "slow",
                "model": "openai/gpt-oss-20b",
                "stream": True,
                "cases": [{"id": f"c{n:02d}", "n": n} for n in range(30)],
                "messages": [{"role": "user", "content": "Say {{ n }} slowly."}],
            }
        ),
        encoding="utf-8",
    )
    started = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "slow/", "--provider", "offline", "-c", "2"],
        cwd=project,
        env={**env, "RUNNER_OFFLINE_CHUNK_DELAY": "0.05"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        killed_run = None
        while time.monotonic() < deadline and started.poll() is None:
            found = [
                p
                for p in (project / "runs").glob("*/results.jsonl")
                if p.parent.name != Path(first).name
            ]
            if found and found[0].read_bytes().count(b"\n") >= 1:
                killed_run = found[0].parent
                break
            time.sleep(0.01)
        started.kill()
    finally:
        started.wait()
    assert killed_run is not None, "the slow run saved nothing before it ended"
    saved_before = (killed_run / "results.jsonl").read_bytes().count(b"\n")
    assert saved_before < 30, "the slow run ended before the kill"
    runner(project, env, "run", "--resume", str(killed_run))
    resumed = records(killed_run)
    assert sorted(r["id"] for r in resumed) == [f"slow/c{n:02d}" for n in range(30)]
    assert {r["status"] for r in resumed} == {"ok"}

    second = saved_in(runner(project, env, "run", "specs/haiku.yaml", "--provider", "offline"))
    assert "haiku" in runner(project, env, "show", second)
    runner(project, env, "report", first, second, "-o", "report.html")
    assert (project / "report.html").stat().st_size > 0
    runner(project, env, "export", first, "-o", "table.csv")
    runner(project, env, "export", first, "-o", "answers.jsonl")
    # Runs in another order: B's lines are read back by position.
    diff = runner(project, env, "diff", first, second, code=1)  # 1: they differ
    assert "1 paired: 0 changed, 1 unchanged; 0 added, 32 missing" in diff
    assert "scored 33 records" in runner(project, env, "score", first)

    replayed = saved_in(
        runner(project, env, "run", "specs/", "--provider", "offline", "--replay", "answers.jsonl")
    )
    assert len(records(project / replayed)) == 33

    batch = saved_in(runner(project, env, "batch", "submit", "specs/", "--provider", "offline"))
    runner(project, env, "batch", "status", batch)
    runner(project, env, "batch", "fetch", batch)
    assert len(records(project / batch)) == 33
    assert not list(project.glob("runs/*/.runner.lock"))


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes]:
    """Runs ``args`` with stdout and stderr on a pseudo-terminal, as a person sees it; its
    exit code and everything it printed."""
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    printed = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process has gone and closed the terminal
            break
        if not chunk:
            break
        printed += chunk
    os.close(leader)
    return process.wait(timeout=60), bytes(printed)


def test_a_cp1252_console_shows_what_it_cannot_encode_as_escapes(tmp_path):
    """A Windows console (cp1252): the progress bar, the answers after a run, a streamed
    answer as it arrives and error messages print, with what cp1252 lacks as escapes."""
    (tmp_path / "pyproject.toml").write_text("")
    specs = tmp_path / "specs"
    specs.mkdir()
    for name, stream in (("emoji", False), ("streamed", True)):
        spec = {
            "version": 1,
            "name": name,
            "model": "openai/gpt-oss-20b",
            "stream": stream,
            "messages": [{"role": "user", "content": "Répète: 你好 🎉 ✓"}],
        }
        (specs / f"{name}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env.update(PYTHONIOENCODING="cp1252", RUNNER_CACHE_DIR=str(tmp_path / "cache"), COLUMNS="100")
    runner = [sys.executable, "-m", "runner"]

    for spec in ("specs/emoji.yaml", "specs/streamed.yaml"):
        code, printed = on_a_terminal(
            [*runner, "run", spec, "--provider", "offline"], tmp_path, env
        )
        text = printed.decode("cp1252", errors="strict")
        assert code == 0, text
        assert "Traceback" not in text
        assert "Répète: \\u4f60\\u597d \\U0001f389 \\u2713" in text  # the answer
        assert "1 ok" in text

    code, printed = on_a_terminal([*runner, "show", "latest"], tmp_path, env)
    assert code == 0 and "\\U0001f389" in printed.decode("cp1252")

    (specs / "broken.yaml").write_text("version: 1\nname: 你好🎉\nmodel: [\n", "utf-8")
    code, printed = on_a_terminal([*runner, "validate", "specs/broken.yaml"], tmp_path, env)
    text = printed.decode("cp1252")
    assert code != 0 and "Traceback" not in text and "broken.yaml" in text


SUB_SPECS = {
    "sub-reply.yaml": "version: 1\nname: sub-reply\nextends: ../_support-base.yaml\n"
    "cases: ../data/tickets.csv\n",
    "signed.yaml": "version: 1\nname: signed\nmodel: openai/gpt-oss-20b\n"
    "messages:\n  - role: user\n    content: 'Hello. {% include \"parts/sign-off.j2\" %}'\n",
    "picture.yaml": "version: 1\nname: picture\nmodel: qwen/qwen3.8-27b\n"
    "messages:\n  - role: user\n    content:\n      - {type: text, text: What is it?}\n"
    "      - {type: image_url, image_url: {path: ../data/receipts/cafe-0412.png}}\n",
}


def example_project(project: Path, windows: bool) -> None:
    """The example project and two specs in a subfolder; ``windows``: as a Windows user edits
    it, with backslashes in every relative path of the specs ($ref, cases:, extends:, judge:,
    an image's path:) and CRLF line ends in every spec and data file."""
    for folder in ("specs", "schemas", "templates"):
        shutil.copytree(ROOT / folder, project / folder)
    (project / "pyproject.toml").write_text("")
    (project / "specs" / "sub").mkdir()
    (project / "templates" / "parts").mkdir()
    (project / "templates" / "parts" / "sign-off.j2").write_text("Regards,\nThe team\n")
    for name, text in SUB_SPECS.items():
        (project / "specs" / "sub" / name).write_text(text, encoding="utf-8")
    if not windows:
        return
    for path in (project / "specs").rglob("*"):
        if path.suffix not in (".yaml", ".csv"):
            continue
        text = path.read_text(encoding="utf-8")
        for written in ("../", "data/", "receipts/", "judges/polite", "parts/"):
            text = text.replace(written, written.replace("/", "\\"))
        path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))


def test_a_project_written_on_windows_runs_and_records_posix_paths(tmp_path, monkeypatch, run_cli):
    """Backslashed paths and CRLF files run as the same project does with / and LF: the same
    records, whose paths use /, so runs made on either system diff cleanly."""
    runs = {}
    for windows in (False, True):
        project = tmp_path / ("windows" if windows else "posix")
        example_project(project, windows)
        monkeypatch.chdir(project)
        monkeypatch.setenv("RUNNER_CACHE_DIR", str(project / "cache"))
        validated = run_cli("validate", "specs/")
        assert validated.exit_code == 0, validated.output
        ran = run_cli("run", "specs/", "--provider", "offline", "--out", "runs", "--quiet")
        assert ran.exit_code == 0, ran.output
        (runs[windows],) = (project / "runs").iterdir()
    windows_spec = (tmp_path / "windows" / "specs" / "sub" / "picture.yaml").read_bytes()
    assert b"..\\data\\receipts\\cafe-0412.png}}\r\n" in windows_spec
    signed = (tmp_path / "windows" / "specs" / "sub" / "signed.yaml").read_bytes()
    assert b'include "parts\\sign-off.j2"' in signed

    def paths(record: dict) -> list:
        images = [
            part["image_url"]
            for message in record["request"]["messages"]
            if isinstance(message["content"], list)
            for part in message["content"]
            if part.get("type") == "image_url"
        ]
        checks = [c["target"] for c in (record.get("expectations") or {}).get("checks", [])]
        judges = [judge["spec"]["path"] for judge in record.get("judges") or []]
        return [
            record["spec"]["path"],
            (record["case"] or {}).get("source"),
            images,
            checks,
            judges,
        ]

    posix = {r["id"]: paths(r) for r in records(runs[False])}
    windows = {r["id"]: paths(r) for r in records(runs[True])}
    assert len(posix) == 38 and windows == posix
    assert "\\" not in json.dumps(windows)
    assert posix["picture"][2][0]["path"] == "specs/data/receipts/cafe-0412.png"
    judged = posix["polite-reply/double-charge"]
    assert judged[3][0] == "judges/polite.yaml" and judged[4][0] == "specs/judges/polite.yaml"
    with monkeypatch.context() as inside:
        inside.chdir(tmp_path)
        diff = run_cli("diff", str(runs[False]), str(runs[True]))
    assert "38 paired: 0 changed, 38 unchanged" in diff.output, diff.output


def test_a_csv_saved_on_windows_gives_the_same_cases(tmp_path):
    """CRLF row ends, and a CRLF inside a quoted value, read as the LF file does: the same
    values (a line break is "\\n") and so the same case ids."""
    from runner.spec.cases import CaseSource, iter_cases

    lf = tmp_path / "lf.csv"
    lf.write_bytes(b'text,n\nHello,1\n"two\nlines",2\n')
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    cases = [
        [(c.id, c.vars) for c in iter_cases(CaseSource(path.name, file=path))]
        for path in (lf, crlf)
    ]
    assert cases[0] == cases[1]
    assert cases[1][1][1]["text"] == "two\nlines"


@pytest.mark.skipif(os.name == "nt", reason="a drive letter is a folder's start on Windows")
@pytest.mark.parametrize("out", ["C:\\runs", "D:/runs"])
def test_a_drive_letter_in_out_is_refused_where_there_are_no_drives(project, run_cli, out):
    """runs/C:\\runs (a folder named after a Windows path) is not what anyone means."""
    (project / "specs").mkdir()
    (project / "specs" / "a.yaml").write_text(
        "version: 1\nname: a\nmodel: openai/gpt-oss-20b\nmessages: [{role: user, content: hi}]\n"
    )
    result = run_cli("run", "specs/", "--provider", "offline", "--out", out)
    assert result.exit_code == 2
    assert f"the runs folder {out} starts with a drive letter" in result.output
    assert sorted(p.name for p in project.iterdir()) == ["pyproject.toml", "specs"]


# POSIX-only names, and the modules allowed each (where the fallback is beside it).
POSIX_ONLY = {
    "os.pread": ("runner/runs/fileio.py",),
    "os.pwrite": None,
    "os.fork": None,
    "os.getuid": None,
    "os.geteuid": None,
    "os.killpg": None,
    "os.setsid": None,
    "os.O_DIRECTORY": None,
    "os.O_NOFOLLOW": None,
    "os.fdatasync": None,
    "import fcntl": ("runner/runs/lock.py",),
    "import resource": None,
    "import termios": None,
    "import pwd": None,
    "signal.SIGKILL": None,
    "signal.SIGHUP": None,
    "signal.SIGPIPE": ("runner/cli/options.py",),
    "signal.SIGALRM": None,
    "signal.SIGUSR1": None,
    "signal.alarm": None,
    "preexec_fn": None,
    "start_new_session": None,
}


def test_posix_only_calls_stay_beside_their_fallbacks():
    """New code that calls what Windows lacks fails here at once (the walkthrough above finds
    only what it runs): each POSIX-only name lives only in modules that fall back."""
    found = []
    for path in sorted((ROOT / "runner").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        for call, allowed in POSIX_ONLY.items():
            if re.search(rf"(?<![\w.]){re.escape(call)}\b", text) and name not in (allowed or ()):
                found.append(f"{name}: {call}")
    assert found == []
