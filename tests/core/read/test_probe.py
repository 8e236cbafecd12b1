"""Format detection: the first-byte table must pick what asking every parser would pick."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from imagegui.core.read.formats import qcow, qcow2, qed, vhdx, vmdk, vpc
from imagegui.core.read.probe import detect, extension, is_raw_candidate

ALL = (qcow2, qcow, qed, vpc, vhdx, vmdk)
MAGICS = [b"QFI\xfb", b"QED\0", b"conectix", b"vhdxfile", b"KDMV", b"COWD", b"# Disk", b"version=1"]


def brute_force(head: bytes):
    return next((m for m in ALL if m.probe(head)), None)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from([b"", *MAGICS]), st.binary(max_size=64))
def test_detect_equals_asking_every_parser(prefix, tail):
    head = prefix + tail
    assert detect(head) is brute_force(head)


def test_descriptor_text_is_detected():
    text = b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
    assert detect(text) is vmdk
    assert detect(b"  \nversion=1\n") is brute_force(b"  \nversion=1\n")


def test_extension_and_raw_candidates():
    assert extension("/a/b.QCOW2") == ".qcow2"
    assert extension("/a/.hidden") == "" and extension("/a.d/file") == ""
    assert is_raw_candidate("/x/disk.img")
    assert is_raw_candidate("/nova/instances/_base/" + "a" * 40)
    assert is_raw_candidate("/nova/instances/uuid/disk")
    assert is_raw_candidate("/nova/instances/uuid/disk.local")
    assert not is_raw_candidate("/x/notes")
    # Nova's bookkeeping files are not disks
    assert not is_raw_candidate("/nova/instances/uuid/disk.info")
    assert not is_raw_candidate("/nova/instances/_base/" + "a" * 40 + ".part")
    assert not is_raw_candidate("/nova/instances/_base/" + "a" * 40 + ".info")
