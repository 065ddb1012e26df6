"""A small, bounded reader of DER for the few structures read on every verification (a seal signature, its time
stamp): the elements of a constructed value as (tag, header start, contents start, end) offsets into the bytes,
nothing decoded that is not asked for. It reads DER only (definite lengths in their shortest form, one-byte tags,
every element ending where its parent ends) and raises :class:`Unreadable` for anything else, so that a caller
falls back to asn1crypto for BER and other unusual encodings."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from asn1crypto import core


class Unreadable(Exception):
    """Bytes outside what this reader walks (not an error of the input: a fuller reader decides)."""


class Tlv(NamedTuple):
    tag: int
    start: int  # the first byte of the header
    body: int  # the first byte of the contents
    end: int


_tlv = tuple.__new__  # builds a Tlv without the Python-level __new__ of a NamedTuple (many per verification)


def children(buf: bytes, body: int, end: int) -> list[Tlv]:
    """The elements between body and end, which they must fill exactly."""
    out: list[Tlv] = []
    append = out.append
    pos = body
    while pos < end:
        at = pos + 2
        if at > end:
            raise Unreadable("header")
        tag = buf[pos]
        if tag & 0x1F == 0x1F:
            raise Unreadable("header")
        length = buf[pos + 1]
        if length >= 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or at + count > end or buf[at] == 0:
                raise Unreadable("length")
            length = int.from_bytes(buf[at : at + count], "big")
            if length < 0x80:
                raise Unreadable("length not minimal")
            at += count
        stop = at + length
        if stop > end:
            raise Unreadable("length beyond its parent")
        append(_tlv(Tlv, (tag, pos, at, stop)))
        pos = stop
    return out


def whole(buf: bytes, tag: int) -> Tlv:
    """The one element the bytes hold, with that tag."""
    items = children(buf, 0, len(buf))
    if len(items) != 1 or items[0].tag != tag:
        raise Unreadable("not one element")
    return items[0]


def inside(buf: bytes, outer: Tlv, tags: tuple[int, ...]) -> list[Tlv]:
    """The children of `outer`, whose leading tags must be `tags`."""
    items = children(buf, outer.body, outer.end)
    if len(items) < len(tags):
        raise Unreadable("layout")
    for item, tag in zip(items, tags, strict=False):  # the items may go on past the leading tags
        if item.tag != tag:
            raise Unreadable("layout")
    return items


def only(buf: bytes, outer: Tlv, tag: int) -> Tlv:
    """The single child of `outer`, with that tag."""
    items = inside(buf, outer, (tag,))
    if len(items) != 1:
        raise Unreadable("layout")
    return items[0]


def body(buf: bytes, item: Tlv) -> bytes:
    return buf[item.body : item.end]


def bits(buf: bytes, item: Tlv) -> bytes:
    """The octets of a BIT STRING with no unused bits (how signatures and hashes are carried)."""
    if item.tag != 0x03 or item.end == item.body or buf[item.body] != 0:
        raise Unreadable("BIT STRING")
    return buf[item.body + 1 : item.end]


def oid_contents(dotted: str) -> bytes:
    """The contents octets of an OBJECT IDENTIFIER (what the reader compares)."""
    return bytes(core.ObjectIdentifier(dotted).contents)


@lru_cache(maxsize=256)  # a pure function of the bytes; few distinct identifiers are ever read
def dotted(contents: bytes) -> str:
    """An OBJECT IDENTIFIER's dotted form, from its contents octets."""
    if not contents or len(contents) >= 0x80:
        raise Unreadable("OBJECT IDENTIFIER")
    return str(core.ObjectIdentifier.load(b"\x06" + bytes([len(contents)]) + contents).dotted)
