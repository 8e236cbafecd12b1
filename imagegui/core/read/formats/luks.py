"""A raw LUKS (v1) volume: qemu's prober calls it ``luks``, not raw.

Mirrors the parts of qemu 7.2's ``block/crypto.c`` / ``crypto/block-luks.c`` that ``qemu-img info``
runs without a key: the magic and version 1 (LUKS2 is not opened by qemu's luks driver and probes
as raw), the header's key-slot states, and a payload that starts inside the file. The guest sees
the file minus the header area: ``virtual size = file size - payload offset``. Nothing here
decrypts; a backing chain onto a LUKS volume needs ``-F luks`` recorded.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from imagegui.core.read.formats.base import (
    BoundedReader,
    Header,
    ParseError,
    decode_name,
    named_struct,
)
from imagegui.core.read.formats.limits import LUKS_HEADER_SIZE

MAGIC = b"LUKS\xba\xbe"


class LuksHeader(NamedTuple):
    """The fixed part of a LUKS v1 header (crypto/block-luks.c ``QCryptoBlockLUKSHeader``)."""

    magic: bytes
    version: int
    cipher_name: bytes
    cipher_mode: bytes
    hash_spec: bytes
    #: In 512-byte sectors.
    payload_offset: int
    master_key_len: int
    master_key_digest: bytes
    master_key_salt: bytes
    master_key_iterations: int
    uuid: bytes


_HEADER = named_struct(">6sH32s32s32sII20s32sI40s", LuksHeader._fields)
_SLOTS = 8
#: The eight key slots after the fixed header, 48 bytes each (active, iterations, salt[32],
#: key_offset, stripes): only each slot's state is read.
_SLOT_STATES = struct.Struct(">" + "I44x" * _SLOTS)
_SIZE = _HEADER.size + _SLOT_STATES.size
if _SIZE != LUKS_HEADER_SIZE:  # the qcow2 parser checks its LUKS extension against this size
    raise TypeError(f"LUKS header layout is {_SIZE} bytes, qemu's is {LUKS_HEADER_SIZE}")
SLOT_ACTIVE, SLOT_INACTIVE = 0x00AC71F3, 0x0000DEAD
SECTOR = 512


def probe(head: bytes) -> bool:
    """qemu's ``qcrypto_block_luks_has_format``: the magic and version 1."""
    return len(head) >= 8 and head[:6] == MAGIC and head[6:8] == b"\0\1"


def parse(r: BoundedReader) -> Header:
    data = r.read_exact(0, _SIZE, "LUKS header")
    h = LuksHeader._make(_HEADER.unpack_from(data))
    version = h.version
    if version != 1:
        raise ParseError(f"LUKS header: version {version} is not supported by qemu (only 1)")
    active = 0
    for i, state in enumerate(_SLOT_STATES.unpack_from(data, _HEADER.size)):
        if state not in (SLOT_ACTIVE, SLOT_INACTIVE):
            raise ParseError(f"LUKS header: key slot {i} is corrupted (state {state:#x})")
        active += state == SLOT_ACTIVE
    offset = h.payload_offset * SECTOR
    if offset > r.size:
        raise ParseError(
            f"LUKS header: payload offset {offset:,} lies past the end of the file "
            f"({r.size:,} bytes)"
        )
    flags = {
        "encrypted": True,
        "cipher": decode_name(h.cipher_name),
        "cipher_mode": decode_name(h.cipher_mode),
        "hash": decode_name(h.hash_spec),
        "uuid": decode_name(h.uuid),
        "payload_offset": offset,
        "key_bytes": h.master_key_len,
        "active_key_slots": active,
    }
    return Header(format="luks", virtual_size=r.size - offset, flags=flags)
