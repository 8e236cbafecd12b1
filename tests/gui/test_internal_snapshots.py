"""The details panel lists an image's internal snapshots (id, name, VM state, date, VM clock,
disk size), read with the scan on its worker, as qemu-img lists them."""

from __future__ import annotations

from conftest import qemu_img, qemu_info


def test_details_list_the_internal_snapshots(window, open_dir, make, tmp_path):
    img = make.create("vm.qcow2", "qcow2", "64M")
    qemu_img("snapshot", "-c", "fresh install", img)
    qemu_img("resize", img, "128M")
    qemu_img("snapshot", "-c", "after <update>", img)
    plain = make.create("plain.qcow2", "qcow2", "64M")
    open_dir(tmp_path)
    assert [s.name for s in window.session.snapshot.internal[str(img)]] == [
        s["name"] for s in qemu_info(img)["snapshots"]
    ]
    window.selection.set(str(img))
    text = window.details.toPlainText()
    assert "Internal snapshots (2)" in text
    section = text.split("Internal snapshots (2)")[1].split("Overlays")[0]
    cells = [c.strip() for c in section.splitlines() if c.strip()]
    first, second = window.session.snapshot.internal[str(img)]
    row = ["1", "fresh install", "—", first.date_text, "00:00:00.000", "64 MiB"]
    assert cells[cells.index("fresh install") - 1 :][:6] == row
    assert cells[cells.index("after <update>") - 1 :][:6] == [
        "2", "after <update>", "—", second.date_text, "00:00:00.000", "128 MiB",
    ]  # fmt: skip
    assert "Reverting to one replaces the current state" in text
    assert "--" not in section  # window terms
    window.selection.set(str(plain))
    text = window.details.toPlainText()
    assert "Internal snapshots (" not in text and "Take Snapshot…" in text


def test_take_revert_delete_from_the_details(qtbot, window, open_dir, wait_plan, tmp_path):
    from opshelpers import pattern_at, qemu_io

    img = make_image(tmp_path)
    qemu_io(img, "write -P 0x11 0 1M")
    open_dir(tmp_path)
    window.selection.set(str(img))
    window._on_details_action("snapshot-create")
    dialog = window.ops.dialog
    dialog.name.setText("clean")
    plan = wait_plan(dialog)
    assert not plan.refused and plan.action == "create"
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert [s.name for s in window.session.snapshot.internal[str(img)]] == ["clean"]
    qemu_io(img, "write -P 0x22 0 1M")
    window.selection.set(str(img))
    window._on_details_action("snapshot-apply:0")
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert plan.action == "apply" and not plan.refused
    assert dialog.cancel_button.isDefault() and not dialog.ok_button.isDefault()  # destructive
    assert dialog.ok_button.text() == "Revert, discarding the current state"
    assert "everything written to it since" in dialog.preview.toPlainText()
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert pattern_at(img, 0x11, 0, "1M")
    window.selection.set(str(img))
    window._on_details_action("snapshot-delete:0")
    dialog = window.ops.dialog
    wait_plan(dialog)
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert str(img) not in window.session.snapshot.internal
    assert qemu_info(img).get("snapshots", []) == []


def make_image(tmp_path):
    from opshelpers import create

    return create(tmp_path / "vm.qcow2")


def test_the_demo_has_an_image_whose_details_list_its_snapshots(window, open_dir, tmp_path):
    from imagegui.core.demo import SNAPSHOT_NAMES, build_demo

    root = build_demo(str(tmp_path / "demo"))
    open_dir(root)
    disk = f"{root}/vms/fedora-40.qcow2"
    assert [s.name for s in window.session.snapshot.internal[disk]] == list(SNAPSHOT_NAMES)
    window.selection.set(disk)
    text = window.details.toPlainText()
    assert "Internal snapshots (2)" in text
    assert all(name in text for name in SNAPSHOT_NAMES)
