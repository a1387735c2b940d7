"""Bounds on what one msgpack message can make a decoder allocate, checked before decoding.

A message size limit alone does not bound memory: an empty list is one byte on the wire
and about 60 bytes of Python objects, so a few MiB of ``[[], [], ...]`` become hundreds of
MiB. :func:`scan` walks the message's headers (skipping string and binary payloads by
their length, creating nothing) and refuses one with more than ``max_objects`` values or
nesting deeper than ``max_depth``, so a decode after it allocates at most the message's
own bytes plus a bounded number of small objects. Its cost is bounded by ``max_objects``
too, which makes it cheap enough to run before authentication.

:func:`peek_str` reads one string value of the top-level map (a token) without decoding
anything else, so a server can refuse an unauthenticated request before the expensive part.
"""

from __future__ import annotations

__all__ = ["WireLimitError", "scan", "peek_str", "DEFAULT_MAX_OBJECTS", "DEFAULT_MAX_DEPTH"]

#: values (containers, scalars, strings, arrays' marker maps) one message may hold; a real
#: observation has tens to a few hundred
DEFAULT_MAX_OBJECTS = 10_000
#: nesting depth; real messages nest 3 to 5 levels
DEFAULT_MAX_DEPTH = 32


class WireLimitError(ValueError):
    """A message breaks a structural limit or is not well-formed msgpack."""


# bytes that follow the type byte, by type byte, for fixed-size scalars
_FIXED = {
    0xC0: 0, 0xC2: 0, 0xC3: 0,  # nil, false, true
    0xCA: 4, 0xCB: 8,  # float32, float64
    0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,  # uint8..64
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,  # int8..64
    0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,  # fixext 1..16 (+ type byte)
}  # fmt: skip
# type byte -> (width of the length field, extra bytes after it) for sized payloads
_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),
          0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}  # fmt: skip
# type byte -> (width of the count field, values per entry) for containers
_CONTAINERS = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


_EXT = frozenset((0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8))


def _value(
    buf: memoryview, pos: int, n: int, max_objects: int, max_depth: int, count: list[int], allow_ext: bool = False
) -> int:
    """Skip one value starting at ``pos`` (containers included); returns the position after it."""
    stack = [1]
    while stack:
        if stack[-1] == 0:
            stack.pop()
            continue
        stack[-1] -= 1
        if pos >= n:
            raise WireLimitError("truncated msgpack message")
        b = buf[pos]
        pos += 1
        count[0] += 1
        if count[0] > max_objects:
            raise WireLimitError(f"message holds more than {max_objects} values (max_objects)")
        if b <= 0x7F or b >= 0xE0:  # positive / negative fixint
            continue
        children = 0
        if not allow_ext and b in _EXT:
            raise WireLimitError(f"msgpack extension type (0x{b:02x}) is not part of this protocol")
        if b <= 0x8F:  # fixmap
            children = 2 * (b & 0x0F)
        elif b <= 0x9F:  # fixarray
            children = b & 0x0F
        elif b <= 0xBF:  # fixstr
            pos += b & 0x1F
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _SIZED:
            width, extra = _SIZED[b]
            if pos + width > n:
                raise WireLimitError("truncated msgpack message")
            pos += width + extra + int.from_bytes(buf[pos : pos + width], "big")
        elif b in _CONTAINERS:
            width, per = _CONTAINERS[b]
            if pos + width > n:
                raise WireLimitError("truncated msgpack message")
            children = per * int.from_bytes(buf[pos : pos + width], "big")
            pos += width
        else:  # 0xC1 is never used
            raise WireLimitError(f"invalid msgpack type byte 0x{b:02x}")
        if pos > n:
            raise WireLimitError("truncated msgpack message")
        if children:
            if len(stack) >= max_depth:
                raise WireLimitError(f"message nested deeper than {max_depth} levels (max_depth)")
            if children > max_objects:
                raise WireLimitError(f"a container claims {children} values, more than {max_objects} (max_objects)")
            stack.append(children)
    return pos


def scan(
    data: bytes | bytearray | memoryview,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    allow_ext: bool = False,
) -> int:
    """Check that ``data`` is one msgpack value within the limits; returns its number of values.

    Extension types (which decode to objects other than the protocol's maps, lists, strings,
    bytes and numbers) are refused unless ``allow_ext``.
    """
    buf = memoryview(data).cast("B")
    count = [0]
    end = _value(buf, 0, len(buf), max_objects, max_depth, count, allow_ext)
    if end != len(buf):
        raise WireLimitError(f"{len(buf) - end} bytes of extra data after the msgpack value")
    return count[0]


def peek_str(data: bytes | bytearray | memoryview, key: str, max_objects: int = DEFAULT_MAX_OBJECTS) -> str | None:
    """The string under ``key`` in the top-level map of ``data`` (None: no map, no such key, not a string).

    Other values are skipped by their headers; nothing but the key strings is decoded. It
    never raises: a malformed message has no token (the decoder then says what is wrong).
    """
    try:
        return _peek_str(data, key, max_objects)
    except (WireLimitError, ValueError, IndexError):
        return None


def _peek_str(data: bytes | bytearray | memoryview, key: str, max_objects: int) -> str | None:
    buf = memoryview(data).cast("B")
    n = len(buf)
    if not n:
        return None
    b = buf[0]
    if 0x80 <= b <= 0x8F:
        entries, pos = b & 0x0F, 1
    elif b in (0xDE, 0xDF) and n >= (3 if b == 0xDE else 5):
        width = 2 if b == 0xDE else 4
        entries, pos = int.from_bytes(buf[1 : 1 + width], "big"), 1 + width
    else:
        return None
    count = [0]
    wanted = key.encode("utf-8")
    for _ in range(min(entries, max_objects)):
        start = pos
        pos = _value(buf, pos, n, max_objects, 1 << 30, count, True)
        is_key = _str_bytes(buf, start, pos) == wanted
        vstart = pos
        pos = _value(buf, pos, n, max_objects, 1 << 30, count, True)
        if is_key:
            raw = _str_bytes(buf, vstart, pos)
            if raw is None:
                return None
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _str_bytes(buf: memoryview, start: int, end: int) -> bytes | None:
    """The payload of the msgpack string spanning ``buf[start:end]`` (None if it is not a string)."""
    b = buf[start]
    if 0xA0 <= b <= 0xBF:
        return bytes(buf[start + 1 : end])
    if b in (0xD9, 0xDA, 0xDB):
        width = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
        return bytes(buf[start + 1 + width : end])
    return None
