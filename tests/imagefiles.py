"""Small image files made in code, for tests and benchmarks (no third-party pictures).

``png`` makes a real, decodable PNG. The other kinds are headers a decoder would start from
(enough for runner, which reads types and sizes from headers only), padded to any byte size.
"""

from __future__ import annotations

import struct
import zlib


def png(
    width: int = 4, height: int = 3, shade: int = 0, pad_to: int = 0, pixels: bytes = b""
) -> bytes:
    """A greyscale PNG, every pixel ``shade`` (or the grey levels ``pixels``, row by row);
    ``pad_to`` adds a private chunk up to that size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    grey = pixels or bytes([shade % 256]) * (width * height)
    raw = b"".join(b"\x00" + grey[row * width : (row + 1) * width] for row in range(height))
    head = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    )
    data = chunk(b"IDAT", zlib.compress(raw))
    filler = b""
    if pad_to > len(head) + len(data) + 24:
        filler = chunk(b"pdDg", b"\x00" * (pad_to - len(head) - len(data) - 24))
    return head + data + filler + chunk(b"IEND", b"")


def jpeg(width: int, height: int) -> bytes:
    """A JPEG's start: SOI, an APP0 (JFIF) segment, then the baseline frame header."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def gif(width: int, height: int, frames: int = 1) -> bytes:
    """A GIF with ``frames`` one-colour frames (more than one: animated)."""
    out = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00" * 2
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: a delay between frames
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
        out += b"\x02\x02\x44\x01\x00"  # LZW code size 2, one data sub-block, end
    return out + b"\x3b"


def webp(width: int, height: int, kind: str = "VP8L") -> bytes:
    """A WebP's RIFF header with its first chunk: lossless (VP8L), lossy (VP8 ) or VP8X."""
    if kind == "VP8L":
        bits = (width - 1) | ((height - 1) << 14)
        chunk = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + struct.pack("<I", bits)
    elif kind == "VP8 ":
        frame = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", width, height)
        chunk = b"VP8 " + struct.pack("<I", len(frame)) + frame
    else:
        canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunk = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + canvas
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk
