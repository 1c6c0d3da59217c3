"""A small PNG bar chart of OEE per period for report e-mails, with no plotting dependency.

E-mail clients do not run scripts and many block SVG, so the trend is a plain PNG: one bar per
period (OEE %), dark background, a line at 85 % ("world class"). Encoded with zlib (RFC 2083).
"""

import struct
import zlib

WIDTH, HEIGHT, MARGIN = 640, 240, 20
BACKGROUND, BAR, EMPTY, GUIDE = (17, 24, 39), (56, 189, 248), (75, 85, 99), (250, 204, 21)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bar_chart_png(values: list[float | None]) -> bytes:
    """A PNG with one bar per value (0-100; None draws a short grey stub: no planned time)."""
    pixels = [[BACKGROUND] * WIDTH for _ in range(HEIGHT)]
    plot_h = HEIGHT - 2 * MARGIN
    n = max(len(values), 1)
    slot = (WIDTH - 2 * MARGIN) / n
    for index, value in enumerate(values):
        left = int(MARGIN + index * slot + slot * 0.15)
        right = max(left + 1, int(MARGIN + (index + 1) * slot - slot * 0.15))
        height = 3 if value is None else int(plot_h * min(max(value, 0), 100) / 100)
        color = EMPTY if value is None else BAR
        for y in range(HEIGHT - MARGIN - height, HEIGHT - MARGIN):
            row = pixels[y]
            for x in range(left, min(right, WIDTH - MARGIN)):
                row[x] = color
    guide_y = HEIGHT - MARGIN - int(plot_h * 0.85)
    for x in range(MARGIN, WIDTH - MARGIN, 2):
        pixels[guide_y][x] = GUIDE
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
    )
