"""qemu's rules for turning a stored backing name into a path."""

import pytest

from imagegui.core.read.backing import is_protocol, is_within, resolve


@pytest.mark.parametrize(
    "name",
    [
        "nbd:localhost:10809",
        'json:{"driver": "raw"}',
        "http://host/x.img",
        "rbd:pool/img",
        "file:x",
    ],
)
def test_protocols_are_not_paths(name):
    assert is_protocol(name)
    assert resolve("/srv/vm/top.qcow2", name) is None


@pytest.mark.parametrize("name", ["base.qcow2", "../b/base.qcow2", "/abs/base", "dir/a:b.qcow2"])
def test_files_are_paths(name):
    assert not is_protocol(name)


def test_relative_names_resolve_from_the_overlays_directory_not_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "vm" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "vm" / "a")
    vm = tmp_path / "vm"
    assert resolve(f"{vm}/a/top.qcow2", "../base.qcow2") == f"{vm}/base.qcow2"
    assert resolve("/srv/vm/top.qcow2", "sub/./base.qcow2") == "/srv/vm/sub/base.qcow2"
    assert resolve("/srv/vm/top.qcow2", "/x//y.raw") == "/x/y.raw"


def test_dotdot_after_a_missing_directory_is_left_to_the_kernel():
    """Text normalisation would turn it into a file that may exist; the kernel fails on it."""
    assert resolve("/nonexistent-dir/a/top.qcow2", "../b.qcow2") == "/nonexistent-dir/a/../b.qcow2"


def test_is_within_is_not_fooled_by_a_common_prefix():
    assert is_within("/srv/vm/a", "/srv/vm")
    assert not is_within("/srv/vm2/a", "/srv/vm")


def test_a_missing_directory_after_dotdot_is_named_tidily(tmp_path):
    """``clones/../images/x`` with ``images`` gone names ``images/x``, as the kernel walks it."""
    from imagegui.core.read.backing import canonical

    (tmp_path / "clones").mkdir()
    assert canonical(f"{tmp_path}/clones/../images/x.qcow2") == f"{tmp_path}/images/x.qcow2"
    # a '..' after a missing directory is never walked: left as written
    odd = f"{tmp_path}/gone/../x.qcow2"
    assert canonical(odd) == odd
    # through a symlinked directory, '..' climbs from the real one
    (tmp_path / "data" / "vms").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data" / "vms")
    assert canonical(f"{tmp_path}/link/../base/x.qcow2") == f"{tmp_path}/data/base/x.qcow2"
