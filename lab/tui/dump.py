"""Byte renderings for the message detail: a hex + ASCII dump, an
escaped string and plain hex, for the screen and the clipboard.

Tests: tests/tui/test_pieces.py
"""

from __future__ import annotations

from lab.protocols._base import escape_bytes

__all__ = ["as_escaped", "as_hex", "hexdump"]


def hexdump(data: bytes, *, width: int = 16, limit: int = 4096) -> str:
    """``offset  hex bytes  |ascii|`` rows, like ``hexdump -C``; stops
    after ``limit`` bytes with a note of the size."""
    rows = []
    shown = data[:limit]
    for offset in range(0, len(shown), width):
        chunk = shown[offset : offset + width]
        half = width // 2
        left = " ".join(f"{b:02x}" for b in chunk[:half])
        right = " ".join(f"{b:02x}" for b in chunk[half:])
        hex_part = f"{left:<{half * 3 - 1}}  {right:<{half * 3 - 1}}"
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        rows.append(f"{offset:08x}  {hex_part}  |{text}|")
    if len(data) > limit:
        rows.append(f"… {len(data) - limit} more bytes ({len(data)} in all)")
    return "\n".join(rows)


def as_escaped(data: bytes) -> str:
    """The whole payload as one double-quoted string with C escapes."""
    return escape_bytes(data, limit=len(data) + 1)


def as_hex(data: bytes) -> str:
    """The whole payload as plain hex digits (``bytes.fromhex`` reads it)."""
    return data.hex()
