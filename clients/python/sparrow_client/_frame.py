"""Sparrow's frame layout, version 1 (proto/sparrow/v1/envelope.proto; integers big-endian):
the magic "SPRW", the version (1), flags (0), the envelope's length in 4 bytes, the envelope."""

import struct

MAGIC = b"SPRW"
VERSION = 1
HEADER = struct.Struct(">4sBBI")
# The largest answer accepted (the servers' default frame limit).
LIMIT = 16 << 20


class FrameError(Exception):
    pass


def encode(envelope: bytes) -> bytes:
    if len(envelope) > LIMIT:
        raise FrameError(f"a request of {len(envelope)} bytes exceeds the frame limit of {LIMIT} bytes")
    return HEADER.pack(MAGIC, VERSION, 0, len(envelope)) + envelope


def decode_header(header: bytes) -> int:
    """The length of the envelope that follows `header`."""
    magic, version, flags, length = HEADER.unpack(header)
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r} (expected b'SPRW'): is this a Sparrow protobuf port?")
    if version != VERSION or flags != 0:
        raise FrameError(f"unsupported frame version {version} or flags {flags}")
    if length > LIMIT:
        raise FrameError(f"an answer of {length} bytes exceeds the limit of {LIMIT} bytes")
    return length
