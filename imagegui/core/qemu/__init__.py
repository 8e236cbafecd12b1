"""Running qemu: qemu-img with progress and cancel, qemu-system VMs, processes."""
