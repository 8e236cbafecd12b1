import pytest

from imagegui.core.units import display_path, human_size, parse_size


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (200704, "196 KiB"),
        (1 << 30, "1 GiB"),
        (int(1.5 * (1 << 40)), "1.5 TiB"),
        (1000 * (1 << 20), "1000 MiB"),
    ],
)
def test_human_size(n, text):
    assert human_size(n) == text


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("4096", 4096),
        ("10G", 10 << 30),
        ("512M", 512 << 20),
        ("1.5k", 1536),
        ("20GiB", 20 << 30),
        ("2t", 2 << 40),
    ],
)
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "ten", "10X", "-5G"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_display_path_never_raises_on_undecodable_names():
    name = b"/tmp/\xff.qcow2".decode("utf-8", "surrogateescape")
    assert display_path(name) == "/tmp/\\xff.qcow2"
