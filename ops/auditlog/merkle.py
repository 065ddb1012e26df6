"""Merkle tree hashing and proofs as in RFC 9162 (Certificate Transparency 2.0), section 2.1.

Leaves hash as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left || right), so a leaf
can never be passed off as a node. Proofs are built from stored perfect subtrees (below); the
tests check them against the textbook definitions over every leaf (tests/ops/merkle_textbook.py).
"""

from __future__ import annotations

import hashlib

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The hash of one log entry (domain-separated with a 0x00 prefix)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node (domain-separated with a 0x01 prefix)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


# -- proofs from stored perfect subtrees --------------------------------------------------------
#
# A perfect subtree is named (level, i): the 2**level leaves starting at i * 2**level. Every range
# an RFC 9162 proof needs is either such a subtree or ends at the tree size, and the hash of a
# range [a, b) is the right fold of its binary decomposition. So a proof needs O(log n) stored
# nodes instead of every leaf.

Node = tuple[int, int]


def decompose(a: int, b: int) -> list[Node]:
    """The perfect subtrees that make up [a, b), left to right (a is aligned, as in every proof range)."""
    out: list[Node] = []
    while a < b:
        level = (b - a).bit_length() - 1
        while a % (1 << level):
            level -= 1
        out.append((level, a >> level))
        a += 1 << level
    return out


def range_hash(a: int, b: int, nodes: dict[Node, bytes]) -> bytes:
    """MTH of leaves [a, b), from the hashes of its perfect subtrees."""
    parts = [nodes[n] for n in decompose(a, b)]
    if not parts:
        return EMPTY_ROOT
    result = parts[-1]
    for left in reversed(parts[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PATH(index, D[lo:hi]), leaf to root."""
    if hi - lo == 1:
        return []
    k = _split(hi - lo)
    if index < k:
        return [*inclusion_ranges(index, lo, lo + k), (lo + k, hi)]
    return [*inclusion_ranges(index - k, lo + k, hi), (lo, lo + k)]


def consistency_ranges(m: int, lo: int, hi: int, complete: bool = True) -> list[tuple[int, int]]:
    """The ranges whose hashes form PROOF(m, D[lo:hi])."""
    n = hi - lo
    if m == n:
        return [] if complete else [(lo, hi)]
    k = _split(n)
    if m <= k:
        return [*consistency_ranges(m, lo, lo + k, complete), (lo + k, hi)]
    return [*consistency_ranges(m - k, lo + k, hi, False), (lo, lo + k)]
