"""JSON Schemas of the machine-readable output (package data: the wheel carries them)."""
