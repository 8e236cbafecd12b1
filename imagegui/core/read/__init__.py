"""What is on disk: headers, backing names resolved as qemu does, the walk."""
