"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1: hashing, inclusion and consistency.

A leaf's hash is SHA-256(0x00 || leaf), an interior node's SHA-256(0x01 || left || right), the empty tree's
SHA-256 of nothing; a tree of n leaves splits at the largest power of two below n. Proofs are made and checked by
the algorithms of sections 2.1.3 and 2.1.4, written out here from the RFC (a few dozen lines, no dependency), and
held to the reference test vectors of RFC 6962's implementations in ``tests/test_audit.py``.

Everything takes and returns leaf hashes and 32-byte digests, never the leaves: what a leaf holds is
:mod:`launchrelay.audit.log`'s business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(hashes: Sequence[bytes]) -> bytes:
    """MTH over the leaf hashes (section 2.1.1)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(root(hashes[:k]), root(hashes[k:]))


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) (section 2.1.3.1): the audit path of leaf ``index`` in the tree of ``hashes``."""
    return Span(Frontier(), hashes).inclusion(index)


def consistency_proof(hashes: Sequence[bytes], first: int) -> list[bytes]:
    """PROOF(m, D[n]) (section 2.1.4.1): that the tree of the first ``first`` leaves is a prefix of this one."""
    if not 0 < first <= len(hashes):
        raise ValueError(f"no consistency proof from {first} to {len(hashes)}")
    return Span(Frontier(), hashes)._subproof(first, 0, len(hashes), True)


class Span:
    """A tree known by the frontier of its first leaves and the leaf hashes after them: enough to prove, against
    the whole tree, that any leaf after the frontier is in it, and that the frontier's tree is a prefix of it
    (every node those proofs need is a frontier root or built of the later leaves). What a publisher of proofs
    keeps between two heads, without the leaves before the first."""

    def __init__(self, frontier: Frontier, after: Sequence[bytes]) -> None:
        self.base, self.size, self._after = frontier.size, frontier.size + len(after), after
        self._known: dict[tuple[int, int], bytes] = {}
        lo = 0
        for count, h in _subtrees(frontier):
            self._known[(lo, lo + count)] = h
            lo += count

    def root(self) -> bytes:
        return self._mth(0, self.size) if self.size else EMPTY_ROOT

    def inclusion(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` (at or after the frontier) in the whole tree."""
        if not self.base <= index < self.size:
            raise ValueError(f"no provable leaf {index} in a tree of {self.size} known from {self.base}")
        return self._path(index, 0, self.size)

    def consistency(self) -> list[bytes]:
        """That the frontier's tree is a prefix of the whole tree (nothing to prove from an empty one)."""
        return self._subproof(self.base, 0, self.size, True) if self.base else []

    def _mth(self, lo: int, hi: int) -> bytes:
        known = self._known.get((lo, hi))
        if known is not None:
            return known
        if hi - lo == 1 and lo >= self.base:
            return self._after[lo - self.base]
        if lo < self.base and hi - lo == 1:
            raise ValueError(f"leaf {lo} is inside the frontier: not known")
        k = _split(hi - lo)
        h = self._known[(lo, hi)] = node_hash(self._mth(lo, lo + k), self._mth(lo + k, hi))
        return h

    def _path(self, index: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = _split(hi - lo)
        if index < lo + k:
            return [*self._path(index, lo, lo + k), self._mth(lo + k, hi)]
        return [*self._path(index, lo + k, hi), self._mth(lo, lo + k)]

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if whole else [self._mth(lo, hi)]
        k = _split(hi - lo)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, whole), self._mth(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self._mth(lo, lo + k)]


def _subtrees(frontier: Frontier) -> list[tuple[int, bytes]]:
    """The frontier's subtrees as (leaf count, root), largest first."""
    sizes = [1 << b for b in reversed(range(frontier.size.bit_length())) if frontier.size >> b & 1]
    return list(zip(sizes, frontier.hashes, strict=True))


def _ok(*digests: bytes) -> bool:
    return all(len(d) == HASH_SIZE for d in digests)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """Section 2.1.3.2: whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree of ``size`` leaves
    whose root is ``expected_root``."""
    if not 0 <= index < size or not _ok(leaf, expected_root, *proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """Section 2.1.4.2: whether ``proof`` shows the tree of ``first`` leaves (``first_root``) to be a prefix of the
    tree of ``second`` leaves (``second_root``). Equal sizes need equal roots and no proof; nothing is proved
    from an empty tree."""
    if not _ok(first_root, second_root, *proof) or first > second or first < 0:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the first tree is a whole subtree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


class Frontier:
    """A growing tree kept as the roots of its perfect subtrees, largest first (at most 64 hashes whatever its
    size): what a writer of the log must keep to append a leaf and know the root, without the leaves before it.
    Its bytes (:meth:`to_bytes`) are the size as 8 bytes big-endian and the hashes in order."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count() or not _ok(*hashes):
            raise ValueError(f"a frontier of {size} leaves holds {size.bit_count()} hashes, not {len(hashes)}")
        self.size, self.hashes = size, list(hashes)

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash: each subtree it completes merges with the one to its left."""
        node, n = leaf, self.size
        while n & 1:
            node = node_hash(self.hashes.pop(), node)
            n >>= 1
        self.hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    def to_bytes(self) -> bytes:
        return self.size.to_bytes(8, "big") + b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Frontier:
        size = int.from_bytes(raw[:8], "big")
        body = raw[8:]
        if len(raw) < 8 or len(body) % HASH_SIZE:
            raise ValueError("a frontier is 8 bytes of size and whole hashes")
        return cls(size, [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])
