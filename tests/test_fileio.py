"""read_at gives the same bytes with os.pread and with the seek-and-read fallback that
platforms without os.pread (Windows) use."""

from __future__ import annotations

import threading

import pytest

from runner.runs import fileio


@pytest.fixture(params=["pread", "seek"])
def read_at(request, monkeypatch):
    if request.param == "seek":
        monkeypatch.setattr(fileio, "_pread", None)
    elif fileio._pread is None:
        pytest.skip("this platform has no os.pread")
    return fileio.read_at


def test_reads_at_an_offset_and_stops_at_the_end(tmp_path, read_at):
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as f:
        assert read_at(f, 3, 2) == b"234"
        assert read_at(f, 5, 8) == b"89"
        assert read_at(f, 4, 10) == b""
        assert read_at(f, 0, 0) == b""


def test_threads_sharing_one_file_each_get_their_own_slice(tmp_path, read_at):
    lines = [f"{i:06d}\n".encode() for i in range(2000)]
    path = tmp_path / "lines.txt"
    path.write_bytes(b"".join(lines))
    wrong: list[int] = []
    with open(path, "rb") as f:

        def reader(start: int) -> None:
            for i in range(start, len(lines), 4):
                if read_at(f, 7, i * 7) != lines[i]:
                    wrong.append(i)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert wrong == []
