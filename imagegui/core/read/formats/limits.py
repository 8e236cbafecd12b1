"""The limits qemu enforces when it opens an image, in one place.

Each parser refuses what qemu refuses, so each needs qemu's numbers; keeping them here (rather
than one copy per format module) means a qemu upgrade that moves a limit is one edit, checked
against the source named beside it. Paths are qemu 7.2's (``block/*.c``, ``block/*.h``,
``include/block/block_int-common.h``); the on-disk layouts are in qemu's ``docs/interop/*.rst``.
Names keep qemu's where qemu has one, prefixed by the format.
"""

from __future__ import annotations

# --- C integer types qemu computes in ---------------------------------------------------------

#: INT_MAX: qemu stores table sizes and counts in ``int`` (qcow L1, qcow2 L1, vpc BAT entries).
INT_MAX = (1 << 31) - 1
#: INT64_MAX: qemu's byte offsets and lengths are ``int64_t``.
INT64_MAX = (1 << 63) - 1
#: UINT32_MAX: 32-bit header fields and qemu's ``uint32_t`` arithmetic (QED header size).
UINT32_MAX = (1 << 32) - 1
#: UINT64_MAX: 64-bit header fields and qemu's ``uint64_t`` arithmetic (it wraps there).
UINT64_MAX = (1 << 64) - 1

# --- every format ------------------------------------------------------------------------------

#: include/block/block_int-common.h ``BDRV_MAX_LENGTH``: INT64_MAX aligned down to
#: BDRV_MAX_ALIGNMENT (1 GiB); block/io.c fails any request reaching past it with an I/O error.
BDRV_MAX_LENGTH = INT64_MAX & ~((1 << 30) - 1)
#: block.c ``bdrv_nb_sectors`` / ``bdrv_getlength``: a length of INT64_MAX / 512 sectors or
#: more is refused ("File too large"), whatever the format says.
MAX_VIRTUAL_SIZE = INT64_MAX // 512 * 512
#: include/block/block_int-common.h: ``char backing_file[4096]`` / ``auto_backing_file[4096]``
#: (PATH_MAX): a stored backing name must fit with its NUL (block/qed.c, block/vmdk.c).
BACKING_NAME_BUF = 4096
#: include/block/block_int-common.h: ``char backing_format[16]``: a recorded backing format
#: must fit with its NUL (block/qcow2.c ``qcow2_read_extensions``).
BACKING_FORMAT_BUF = 16

# --- qcow (version 1): block/qcow.c qcow_open ------------------------------------------------

QCOW_MIN_CLUSTER_BITS, QCOW_MAX_CLUSTER_BITS = 9, 16
QCOW_MIN_L2_BITS, QCOW_MAX_L2_BITS = 6, 13
#: block/qcow.c and block/qcow2.c: ``len > 1023`` ("Backing file name too long").
QCOW_MAX_BACKING_NAME = 1023

# --- qcow2: block/qcow2.h, block/qcow2.c qcow2_do_open ---------------------------------------

#: block/qcow2.h ``MIN_CLUSTER_BITS`` / ``MAX_CLUSTER_BITS`` (512 bytes .. 2 MiB).
QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS = 9, 21
#: block/qcow2.c: a v3 header is at least 104 bytes (``header_length < 104``).
QCOW2_MIN_HEADER_LENGTH = 104
#: block/qcow2.c: ``refcount_order > 6`` ("Reference count entry width too large").
QCOW2_MAX_REFCOUNT_ORDER = 6
#: block/qcow2.h ``QCOW_MAX_REFTABLE_SIZE`` (bytes).
QCOW2_MAX_REFTABLE_SIZE = 8 * 1024 * 1024
#: block/qcow2.h ``QCOW_MAX_L1_SIZE`` (bytes; 8 bytes an entry).
QCOW2_MAX_L1_SIZE = 32 * 1024 * 1024
#: block/qcow2.h ``QCOW_MAX_SNAPSHOTS``.
QCOW2_MAX_SNAPSHOTS = 65536
#: block/qcow2.h ``QCOW_MAX_SNAPSHOT_EXTRA_DATA`` (bytes an entry).
QCOW2_MAX_SNAPSHOT_EXTRA_DATA = 1024
#: block/qcow2.h ``QCOW_MAX_SNAPSHOTS_SIZE``: the whole snapshot table, in bytes.
QCOW2_MAX_SNAPSHOTS_SIZE = 1024 * QCOW2_MAX_SNAPSHOTS
#: block/qcow2.h ``QCOW2_MAX_BITMAPS``.
QCOW2_MAX_BITMAPS = 65535
#: block/qcow2.h ``QCOW2_MAX_BITMAP_DIRECTORY_SIZE`` (bytes).
QCOW2_MAX_BITMAP_DIRECTORY_SIZE = 1024 * QCOW2_MAX_BITMAPS
#: crypto/block-luks.c: the LUKS v1 header qemu reads through the crypto extension (bytes).
LUKS_HEADER_SIZE = 592

# --- QED: block/qed.h, block/qed.c bdrv_qed_do_open ------------------------------------------

#: block/qed.h ``QED_MIN_CLUSTER_SIZE`` / ``QED_MAX_CLUSTER_SIZE`` (powers of two, bytes).
QED_MIN_CLUSTER_SIZE, QED_MAX_CLUSTER_SIZE = 4 * 1024, 64 * 1024 * 1024
#: block/qed.h ``QED_MIN_TABLE_SIZE`` / ``QED_MAX_TABLE_SIZE`` (clusters, powers of two).
QED_MIN_TABLE_SIZE, QED_MAX_TABLE_SIZE = 1, 16

# --- VMDK: block/vmdk.c -----------------------------------------------------------------------

#: vmdk_open_vmdk4: ``le32_to_cpu(header.version) > 3`` ("Unsupported VMDK version").
VMDK_MAX_VERSION = 3
#: vmdk_open_vmdk4: ``num_gtes_per_gt > 512`` ("L2 table size too big").
VMDK_MAX_GTES_PER_GT = 512
#: vmdk_add_extent: ``cluster_sectors > 0x200000`` (1 GiB grains: "Invalid granularity").
VMDK_MAX_CLUSTER_SECTORS = 0x200000
#: vmdk_add_extent: ``l1_size > 32 * 1024 * 1024`` (entries: "L1 size too big").
VMDK_MAX_L1_ENTRIES = 32 * 1024 * 1024
#: vmdk.c ``DESC_SIZE``: CID, parentCID and parentFileNameHint are looked up in 20 sectors.
VMDK_DESC_SIZE = 20 * 512

# --- VHD (vpc): block/vpc.c vpc_open ----------------------------------------------------------

#: block/vpc.c ``VHD_MAX_SECTORS`` (2040 GiB).
VHD_MAX_SECTORS = 0xFF000000
#: block/vpc.c ``VHD_MAX_GEOMETRY``: the CHS that means "size by current_size".
VHD_MAX_GEOMETRY = 65535 * 16 * 255
#: vpc_open: ``max_table_entries > (int) INT_MAX / 4`` ("Max Table Entries too large").
VHD_MAX_TABLE_ENTRIES = INT_MAX // 4

# --- VHDX: block/vhdx.h, block/vhdx.c vhdx_open ------------------------------------------------

#: block/vhdx.h ``VHDX_BLOCK_SIZE_MIN`` / ``VHDX_BLOCK_SIZE_MAX`` (bytes, powers of two).
VHDX_BLOCK_SIZE_MIN, VHDX_BLOCK_SIZE_MAX = 1024 * 1024, 256 * 1024 * 1024
#: block/vhdx.h ``VHDX_MAX_SECTORS_PER_BLOCK``.
VHDX_MAX_SECTORS_PER_BLOCK = 1 << 23
#: vhdx_open_region_tables: ``entry_count > 2047``.
VHDX_MAX_REGION_ENTRIES = 2047
#: block/vhdx.h ``VHDX_METADATA_TABLE_MAX_SIZE`` (header and entries, bytes).
VHDX_METADATA_TABLE_MAX_SIZE = 64 * 1024
