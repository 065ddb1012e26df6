"""DER written by hand, for the paths that assemble a structure from bytes rather than build it with asn1crypto
(the hub TSA's tokens in `seal.tsa`, the seal signatures of the sealing path in `seal.sesder`): definite,
shortest-form lengths (X.690 §10.1), as DER requires. Tests compare what these paths make with asn1crypto's bytes."""

from __future__ import annotations


def length(size: int) -> bytes:
    """The DER length octets of a content of `size` octets."""
    if size < 0x80:
        return bytes((size,))
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One element: its (one-octet) tag, the length, the content."""
    return bytes((tag,)) + length(len(content)) + content


def integer(value: int) -> bytes:
    """A DER INTEGER (two's complement, the fewest octets)."""
    size = (value if value >= 0 else ~value).bit_length() // 8 + 1
    return tlv(0x02, value.to_bytes(size, "big", signed=True))
