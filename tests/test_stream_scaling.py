"""Assembling a stream takes time in proportion to its size (issue 28.6).

Each check times the same work at n and 4n pieces in one test run and compares the two: linear
work grows about 4 times, quadratic work 16 times. Each size is timed by the CPU time of this
thread, not the wall clock, so other processes on a busy machine do not count; the best of a few
rounds is taken, and no absolute time is asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from runner.send.stream import ChunkAssembler, EventDecoder

LINEAR_AT_MOST = 8.0  # 4x the work: about 4 when linear, about 16 when quadratic


def growth(work: Callable[[int], object], n: int, rounds: int = 5) -> float:
    """How many times longer ``work(4 * n)`` takes than ``work(n)`` (best of ``rounds``)."""

    def best(size: int) -> float:
        times = []
        for _ in range(rounds):
            start = time.thread_time()
            work(size)
            times.append(time.thread_time() - start)
        return min(times)

    return best(4 * n) / best(n)


def one_long_line(pieces: int) -> EventDecoder:
    """The pieces of a line that has not ended yet (its end, one join and one decode of the
    whole line, is linear either way and is left out of the timing)."""
    decoder = EventDecoder()
    decoder.feed(b"data: ")
    piece = b"x" * 4096
    for _ in range(pieces):
        assert decoder.feed(piece) == []
    return decoder


def test_a_long_line_cut_in_pieces_is_one_event():
    (event,) = one_long_line(64).feed(b"\n\n")
    assert event.data == "x" * 64 * 4096


def logprob_chunks(chunks: int) -> None:
    assembler = ChunkAssembler()
    for _ in range(chunks):
        assembler.add(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": "a"},
                        "logprobs": {"content": [{"token": "a", "logprob": -0.1}]},
                    }
                ]
            }
        )
    assert len(assembler.result()["choices"][0]["logprobs"]["content"]) == chunks


def list_delta_chunks(chunks: int) -> None:
    assembler = ChunkAssembler()
    for number in range(chunks):
        assembler.add({"choices": [{"index": 0, "delta": {"annotations": [{"n": number}]}}]})
    message = assembler.result()["choices"][0]["message"]
    assert [a["n"] for a in message["annotations"]] == list(range(chunks))


def test_a_long_data_line_in_small_pieces_is_decoded_in_linear_time():
    # 2 MiB and 8 MiB of a line in 4 KiB pieces (the buffer was copied whole for each piece).
    assert growth(one_long_line, 512) < LINEAR_AT_MOST


def test_logprobs_are_merged_in_linear_time():
    assert growth(logprob_chunks, 5000) < LINEAR_AT_MOST


def test_list_valued_delta_fields_are_merged_in_linear_time():
    assert growth(list_delta_chunks, 5000) < LINEAR_AT_MOST


def test_a_list_field_merged_across_chunks_does_not_change_the_chunks():
    first = {"choices": [{"index": 0, "delta": {"annotations": [1]}}]}
    second = {"choices": [{"index": 0, "delta": {"annotations": [2]}}]}
    assembler = ChunkAssembler()
    assembler.add(first)
    assembler.add(second)
    assert assembler.result()["choices"][0]["message"]["annotations"] == [1, 2]
    assert first["choices"][0]["delta"]["annotations"] == [1]
