"""imagegui: see and safely work with QEMU/KVM disk-image backing chains."""

__version__ = "0.1.0"
