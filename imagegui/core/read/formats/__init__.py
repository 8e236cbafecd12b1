"""One small module per on-disk format; each exposes ``MAGIC`` and ``parse(reader) -> Header``."""
