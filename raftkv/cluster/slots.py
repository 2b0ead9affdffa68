"""Redis Cluster's key-to-slot mapping: CRC16 (XMODEM) of the key or its {hash tag}, mod 16384."""

from __future__ import annotations

SLOTS = 16384


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _table()


def crc16(data: bytes) -> int:
    crc = 0
    table = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc


def hash_tag(key: bytes) -> bytes:
    """The part of the key that is hashed: the first non-empty ``{...}``, else the whole key."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


def key_slot(key: bytes) -> int:
    return crc16(hash_tag(key)) & (SLOTS - 1)
