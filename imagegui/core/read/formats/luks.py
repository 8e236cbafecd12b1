"""A raw LUKS (v1) volume: qemu's prober calls it ``luks``, not raw.

Mirrors the parts of qemu 7.2's ``block/crypto.c`` / ``crypto/block-luks.c`` that ``qemu-img info``
runs without a key: the magic and version 1 (LUKS2 is not opened by qemu's luks driver and probes
as raw), the header's key-slot states, and a payload that starts inside the file. The guest sees
the file minus the header area: ``virtual size = file size - payload offset``. Nothing here
decrypts; a backing chain onto a LUKS volume needs ``-F luks`` recorded.
"""

from __future__ import annotations

import struct

from imagegui.core.read.formats.base import BoundedReader, Header, ParseError, decode_name

MAGIC = b"LUKS\xba\xbe"
#: magic, version, cipher_name, cipher_mode, hash_spec, payload_offset (512-byte sectors),
#: master key bytes, mk digest, mk salt, mk iterations, uuid.
_HEADER = struct.Struct(">6sH32s32s32sII20s32sI40s")
_SLOT = struct.Struct(">II32sII")
_SLOTS = 8
_SIZE = _HEADER.size + _SLOTS * _SLOT.size  # 592
SLOT_ACTIVE, SLOT_INACTIVE = 0x00AC71F3, 0x0000DEAD
SECTOR = 512


def probe(head: bytes) -> bool:
    """qemu's ``qcrypto_block_luks_has_format``: the magic and version 1."""
    return len(head) >= 8 and head[:6] == MAGIC and head[6:8] == b"\0\1"


def parse(r: BoundedReader) -> Header:
    data = r.read_exact(0, _SIZE, "LUKS header")
    _, version, cipher, mode, hash_spec, payload, key_bytes, _, _, _, uuid = _HEADER.unpack_from(
        data
    )
    if version != 1:
        raise ParseError(f"LUKS header: version {version} is not supported by qemu (only 1)")
    active = 0
    for i in range(_SLOTS):
        state = _SLOT.unpack_from(data, _HEADER.size + i * _SLOT.size)[0]
        if state not in (SLOT_ACTIVE, SLOT_INACTIVE):
            raise ParseError(f"LUKS header: key slot {i} is corrupted (state {state:#x})")
        active += state == SLOT_ACTIVE
    offset = payload * SECTOR
    if offset > r.size:
        raise ParseError(
            f"LUKS header: payload offset {offset:,} lies past the end of the file "
            f"({r.size:,} bytes)"
        )
    flags = {
        "encrypted": True,
        "cipher": decode_name(cipher, "cipher"),
        "cipher_mode": decode_name(mode, "cipher mode"),
        "hash": decode_name(hash_spec, "hash"),
        "uuid": decode_name(uuid, "uuid"),
        "payload_offset": offset,
        "key_bytes": key_bytes,
        "active_key_slots": active,
    }
    return Header(format="luks", virtual_size=r.size - offset, flags=flags)
