"""Spark's 32-bit Murmur3, as ``HashingTF`` and ``FeatureHasher`` use it.

Strings are hashed as their UTF-8 bytes with seed 42, four bytes at a time
(little-endian); how the last one to three bytes are mixed is the one place
where implementations of Murmur3 differ, so it is pinned by a parity test
against Spark itself. Indices are the hash modulo the vector size, made
non-negative as ``Utils.nonNegativeMod`` does.
"""

from __future__ import annotations

SEED = 42
_MASK = 0xFFFFFFFF
_C1 = 0xCC9E2D51
_C2 = 0x1B873593


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK


def _mix_k1(k1: int) -> int:
    k1 = (k1 * _C1) & _MASK
    k1 = _rotl(k1, 15)
    return (k1 * _C2) & _MASK


def _mix_h1(h1: int, k1: int) -> int:
    h1 = _rotl(h1 ^ k1, 13)
    return (h1 * 5 + 0xE6546B64) & _MASK


def _finish(h1: int, length: int) -> int:
    h1 ^= length
    h1 ^= h1 >> 16
    h1 = (h1 * 0x85EBCA6B) & _MASK
    h1 ^= h1 >> 13
    h1 = (h1 * 0xC2B2AE35) & _MASK
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def hash_bytes(data: bytes, seed: int = SEED) -> int:
    """The signed 32-bit hash of ``data``."""
    aligned = len(data) - len(data) % 4
    h1 = seed & _MASK
    for start in range(0, aligned, 4):
        h1 = _mix_h1(h1, _mix_k1(int.from_bytes(data[start : start + 4], "little")))
    k1 = 0
    for shift, byte in enumerate(data[aligned:]):
        k1 ^= byte << (8 * shift)
    if aligned < len(data):
        h1 ^= _mix_k1(k1)
    return _finish(h1, len(data))


def hash_string(text: str) -> int:
    """The signed hash Spark gives the string ``text``."""
    return hash_bytes(text.encode("utf-8"))


def bucket(text: str, size: int) -> int:
    """The vector index Spark gives the string ``text`` in ``size`` slots."""
    return hash_string(text) % size
