"""ImageInfo records as JSON text, three times faster than building dicts for ``json``.

``scan --json`` of 100,000 images spent a third of its time in the generic encoder; this writes
each record from a fixed template with the C string escaper, and encodes each shared flags dict
(``formats.base.shared_flags``) once. The output is exactly ``json.dumps(image_record(info))``
(tests/cli/test_scan_cli.py holds it to that).

Names that are not valid UTF-8 (Linux allows any bytes but ``/`` and NUL) arrive here as lone
surrogates (``surrogateescape``), which strict JSON readers reject. ``names_json`` writes such a
string in its display form (each bad byte as the four characters ``\\xNN``, as the text output
shows it) and, for the one-name fields in ``BYTES_FIELDS``, adds ``<field>_bytes``: the exact
name as hex, present only then. Documented in the README and imagegui/schemas/scan.schema.json.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _esc  # type: ignore[attr-defined]

from imagegui.core.read.formats.base import shared_flag_ids
from imagegui.core.read.model import JSON_FIELDS, ImageInfo
from imagegui.core.units import display_path

#: Fields holding one file name: when it is not valid UTF-8, ``<field>_bytes`` follows it.
BYTES_FIELDS = frozenset({"root", "path", "backing_file", "backing_path", "broken_at", "top"})


def not_utf8(text: str) -> bool:
    """True for a name decoded with ``surrogateescape`` from bytes that are not UTF-8."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def names_json(value: object) -> object:
    """``value`` (a JSON-ready dict/list tree) with every non-UTF-8 string in its display form
    and ``<field>_bytes`` (hex) after each such one-name field. Returns ``value`` itself when
    nothing needs it, so clean documents cost one walk and no copy."""
    if isinstance(value, str):
        return display_path(value) if not_utf8(value) else value
    if isinstance(value, list):
        out = [names_json(v) for v in value]
        return value if all(a is b for a, b in zip(out, value, strict=True)) else out
    if isinstance(value, dict):
        changed = False
        new: dict[str, object] = {}
        for key, v in value.items():
            k = names_json(key)
            nv = names_json(v)
            changed |= k is not key or nv is not v
            new[k] = nv  # type: ignore[index]
            if key in BYTES_FIELDS and isinstance(v, str) and nv is not v:
                new[f"{key}_bytes"] = v.encode("utf-8", "surrogateescape").hex()
        return new if changed else value
    return value


def image_record(info: ImageInfo) -> dict[str, object]:
    """An image's JSON fields, names made valid (``names_json``)."""
    return names_json(info.to_json())  # type: ignore[return-value]


_FIELDS = (
    "path",
    "format",
    "virtual_size",
    "actual_size",
    "backing_file",
    "backing_format",
    "backing_path",
    "backing_protocol",
    "in_use",
    "in_use_write",
    "flags",
    "extents",
    "also_opens_as",
    "mtime",
    "is_symlink",
)
if _FIELDS != JSON_FIELDS:  # a field added to ImageInfo must be added here too
    raise ImportError(f"image_json is out of date with ImageInfo: {JSON_FIELDS}")

_TEMPLATE = "{" + ", ".join(f'"{name}": %s' for name in _FIELDS) + "}"
_encode = json.JSONEncoder(check_circular=False).encode


def _str(value: str | None) -> str:
    return "null" if value is None else _esc(value)


def _bool(value: bool) -> str:
    return "true" if value else "false"


class ImageJSON:
    """Encodes records one after another, remembering the shared flags dicts it has seen."""

    def __init__(self) -> None:
        self._shared = shared_flag_ids()
        self._flags: dict[int, str] = {}

    def _flags_json(self, flags: dict[str, object]) -> str:
        key = id(flags)
        if key not in self._shared:
            return _encode(flags)
        text = self._flags.get(key)
        if text is None:
            text = self._flags[key] = _encode(flags)
        return text

    def encode(self, i: ImageInfo) -> str:
        text = _TEMPLATE % (
            _esc(i.path),
            _esc(i.format),
            int(i.virtual_size),
            int(i.actual_size),
            _str(i.backing_file),
            _str(i.backing_format),
            _str(i.backing_path),
            _bool(i.backing_protocol),
            _bool(i.in_use),
            _bool(i.in_use_write),
            self._flags_json(i.flags),
            _encode(i.extents) if i.extents else "[]",
            _encode(i.also_opens_as) if i.also_opens_as else "[]",
            float.__repr__(float(i.mtime)),
            _bool(i.is_symlink),
        )
        # A lone surrogate is escaped as \udcNN: rare, so the record is redone the slow way
        # (a valid non-BMP character's pair also lands here; the slow way writes it the same).
        if "\\ud" in text:
            return _encode(image_record(i))
        return text
