"""The textbook RFC 9162 §2.1 definitions over every leaf hash, which the hub's proofs from stored
perfect subtrees (ops/auditlog/merkle.py) are checked against; bench/ops_bench.py times against them."""

from __future__ import annotations

from collections.abc import Sequence

from ops.auditlog import merkle


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    level = list(leaves)
    if not level:
        return merkle.EMPTY_ROOT
    # Bottom-up pairing gives the same tree as the recursive definition: the left subtree of a
    # node always covers a power of two, and an odd node is promoted unchanged.
    while len(level) > 1:
        nxt = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
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
    k = _largest_power_of_two_below(n)
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
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*_subproof(m, d[:k], complete), root(d[k:])]
    return [*_subproof(m - k, d[k:], False), root(d[:k])]
