"""Merkle tree hashing and proofs as in RFC 9162 (Certificate Transparency 2.0), section 2.1.

Leaves hash as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left || right), so a leaf
can never be passed off as a node. Proof generation works on the list of leaf hashes; the
verifiers follow the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 word for word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

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


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    level = list(leaves)
    if not level:
        return EMPTY_ROOT
    # Bottom-up pairing gives the same tree as the recursive definition: the left subtree of a
    # node always covers a power of two, and an odd node is promoted unchanged.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf `index` in the tree of `leaves`."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of size {len(leaves)}")
    return _path(index, list(leaves))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, d[:k]), root(d[k:])]
    return [*_path(m - k, d[k:]), root(d[:k])]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): shows the tree of size `old_size` is a prefix of the tree of `leaves`."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"cannot prove size {old_size} against a tree of size {n}")
    if old_size == n:
        return []
    return _subproof(old_size, list(leaves), True)


def _subproof(m: int, d: list[bytes], complete: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if complete else [root(d)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, d[:k], complete), root(d[k:])]
    return [*_subproof(m - k, d[k:], False), root(d[:k])]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` place leaf hash `leaf` at `index` under `expected_root`?"""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (old_size, old_root) a prefix of (new_size, new_root)?"""
    if old_size > new_size or old_size == 0:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path = [old_root, *path]
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


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
