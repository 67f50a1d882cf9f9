"""``results.order``: the plan order of a finished run whose ``results.jsonl`` is not in it.

A run appends each record to ``results.jsonl`` as its answer comes, so the lines are in the
order answers came back. Putting a large file in plan order when the run ends would take a
minute and room for a second copy at a million records; instead ``results.order`` says where
each record's line is, in plan order (spec, case, combination)::

    header   8 bytes b"RUNORDR1", then the size of results.jsonl it describes (u64)
    entries  one per request of the plan, in plan order, 20 bytes each: the offset of the
             record's line (u64), its length with the newline (u32; 0: no record), its line
             number (u32, from 1) and its status (u8: 1 ok, 2 failed, 3 invalid_output)

all little-endian. The run writes an entry as it saves each record (a later line for the same
id, a failed record sent again, overwrites it). The manifest says ``"results_order":
"results.order"`` when readers must read through it; without that key a finished run's
``results.jsonl`` is itself in plan order. This is in the spec wing, below the runs wing that
writes it, because chained cases (``chain.py``) read finished runs too.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ORDER = "results.order"
ORDER_KEY = "results_order"  # the manifest key naming ORDER when readers go through it
MAGIC = b"RUNORDR1"
HEADER = struct.Struct("<8sQ")
ENTRY = struct.Struct("<QIIB3x")
STATUS_CODES = {"ok": 1, "failed": 2, "invalid_output": 3}
STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}
_CHUNK = ENTRY.size * 4096


class Entry(NamedTuple):
    """Where one record of the plan is in results.jsonl (``length`` 0: it has none)."""

    offset: int
    length: int
    number: int
    status: int


def entries(order: Path) -> Iterator[Entry]:
    """Every entry of ``order``, in plan order, read in chunks (bounded memory)."""
    with open(order, "rb") as handle:
        handle.seek(HEADER.size)
        while chunk := handle.read(_CHUNK):
            whole = len(chunk) - len(chunk) % ENTRY.size
            yield from map(Entry._make, ENTRY.iter_unpack(chunk[:whole]))


def describes(folder: Path) -> bool:
    """True when ``folder``'s results.order was finished for the results.jsonl it holds now
    (same size), so its entries point at whole lines."""
    try:
        with open(folder / ORDER, "rb") as handle:
            header = handle.read(HEADER.size)
        size = (folder / "results.jsonl").stat().st_size
    except OSError:
        return False
    if len(header) != HEADER.size:
        return False
    magic, described = HEADER.unpack(header)
    return magic == MAGIC and described == size


def ordered_lines(folder: Path) -> Iterator[tuple[int, int, bytes]]:
    """(offset, line number, line) of every record of ``folder``'s results.jsonl, in plan
    order through results.order (check ``describes`` first). An entry that does not point at
    one whole line (a file edited by hand) is skipped."""
    results = folder / "results.jsonl"
    size = results.stat().st_size
    with open(results, "rb", buffering=1 << 16) as source:  # nearby lines: one read
        for offset, length, number, _ in entries(folder / ORDER):
            if length == 0 or offset + length > size:
                continue
            source.seek(offset)
            line = source.readline(length)  # never more than the line there (a hostile entry)
            if len(line) == length and line.endswith(b"\n"):
                yield offset, number, line
