"""Write the example receipt images (tiny PNGs) that specs/receipt-total.yaml reads.

The pictures are made here, with zlib and struct only: a white slip with a shop name, a few item
lines and a total, drawn in a 3x5 pixel font and scaled up. Run it again to remake them:

    python specs/data/receipts/make_receipts.py
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

FONT = {  # 3x5 glyphs, one string of 15 pixels per character, row by row
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001010010010",
    "8": "111101111101111",
    "9": "111101111001111",
    ".": "000000000000010",
    " ": "000000000000000",
    "A": "010101111101101",
    "B": "110101110101110",
    "C": "011100100100011",
    "D": "110101101101110",
    "E": "111100110100111",
    "F": "111100110100100",
    "G": "011100101101011",
    "H": "101101111101101",
    "I": "111010010010111",
    "K": "101101110101101",
    "N": "110101101101101",
    "L": "100100100100111",
    "M": "101111111101101",
    "O": "111101101101111",
    "P": "111101111100100",
    "R": "110101110101101",
    "S": "011100010001110",
    "T": "111010010010010",
    "U": "101101101101111",
    "X": "101101010101101",
    "$": "011110010011110",
}

RECEIPTS = {
    "cafe-0412.png": ["CAFE LUMA", "TEA 3.50", "CAKE 4.25", "TOTAL $7.75"],
    "books-0977.png": ["BOOK DOCK", "ATLAS 18.00", "MAPS 6.40", "TOTAL $24.40"],
    "market-1203.png": ["FARM MARKET", "PEARS 2.10", "BREAD 3.80", "MILK 1.15", "TOTAL $7.05"],
}

SCALE = 3  # each font pixel becomes SCALE x SCALE image pixels


def render_lines(lines: list[str]) -> list[list[int]]:
    """Grey levels (0 black, 255 white) of a receipt holding ``lines`` of text."""
    width = (max(len(line) for line in lines) * 4 + 3) * SCALE
    height = (len(lines) * 7 + 3) * SCALE
    pixels = [[255] * width for _ in range(height)]
    for row, line in enumerate(lines):
        for col, char in enumerate(line):
            glyph = FONT[char]
            for i, bit in enumerate(glyph):
                if bit == "1":
                    x0 = (2 + col * 4 + i % 3) * SCALE
                    y0 = (2 + row * 7 + i // 3) * SCALE
                    for dy in range(SCALE):
                        for dx in range(SCALE):
                            pixels[y0 + dy][x0 + dx] = 0
    return pixels


def png_bytes(pixels: list[list[int]]) -> bytes:
    """An 8-bit greyscale PNG of ``pixels``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    folder = Path(__file__).parent
    for name, lines in RECEIPTS.items():
        (folder / name).write_bytes(png_bytes(render_lines(lines)))


if __name__ == "__main__":
    main()
