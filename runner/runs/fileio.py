"""Reading a file at a position, on every platform.

``os.pread`` reads at an offset without moving the file's position, so threads can share one
open file; Windows has no ``os.pread``. ``read_at`` uses it where it exists and otherwise seeks
and reads under a lock, with the same result: at most ``size`` bytes, fewer only at the end of
the file.
"""

from __future__ import annotations

import os
import threading
from typing import BinaryIO

_pread = getattr(os, "pread", None)
_seek_lock = threading.Lock()


def read_at(file: BinaryIO, size: int, offset: int) -> bytes:
    """``size`` bytes of ``file`` from ``offset`` (fewer at its end). Without ``os.pread``
    the file's position moves, so a file read this way is read only this way."""
    if _pread is not None:
        fd = file.fileno()
        data = _pread(fd, size, offset)
        if len(data) == size or not data:
            return data
        chunks = [data]  # a short read before the end of the file: read the rest
        got = len(data)
        while got < size:
            more = _pread(fd, size - got, offset + got)
            if not more:
                break
            chunks.append(more)
            got += len(more)
        return b"".join(chunks)
    with _seek_lock:
        file.seek(offset)
        return file.read(size)
