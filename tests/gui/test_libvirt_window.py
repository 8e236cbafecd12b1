"""libvirt in the window: File ▸ Connect to libvirt…, "used by web01 (shut off)" on the card, in
the list and in Details, one section per host, and a failing connection as one quiet note.

Against the real libvirtd of ``tests/libvirt_fixtures.py`` (domains defined, never started).
"""

from __future__ import annotations

import secrets

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from imagegui.gui.dialogs.connect_dialog import ConnectDialog
from imagegui.gui.panels.chains_model import USED_BY
from imagegui.gui.panels.hosts import NODE_ROLE

#: A connection that fails at once, with libvirt's own reason (no such driver).
NO_DRIVER = "nosuchdriver:///system"
#: Another host that does not answer: ssh to a closed loopback port.
CLOSED_SSH = "qemu+ssh://root@127.0.0.1:9/system"


def card_lines(window, node: str) -> tuple[str, str]:
    scene = window.scene
    comp = scene.layout.component_of[node]
    line1, line2, _broken = scene.layers[comp].detail_lines(node)
    return line1, line2


def wait_uses(qtbot, window, node: str, timeout: int = 60_000) -> None:
    """Until the graph shown knows which VMs use ``node`` (built with them, or attached after)."""
    qtbot.waitUntil(
        lambda: (
            window.session.snapshot is not None
            and node in window.session.snapshot.domains
            and not window.scene.building
            and window.scene.snapshot is window.session.snapshot
        ),
        timeout=timeout,
    )


def disk_rows(panel) -> list:
    """Every disk row of the Hosts panel (host > VM > disk), as first-column indexes."""
    model, out = panel.model, []
    for h in range(model.rowCount()):
        host = model.index(h, 0)
        for d in range(model.rowCount(host)):
            dom = model.index(d, 0, host)
            out += [model.index(k, 0, dom) for k in range(model.rowCount(dom))]
    return out


# -- File ▸ Connect to libvirt…


def test_connect_dialog_remembers_a_connection_that_answers_and_removes_it(
    qtbot, window, libvirt_uri
):
    window.actions.connect_libvirt.trigger()
    dialog = window.findChild(ConnectDialog)
    assert dialog is not None and dialog.defaults.isVisibleTo(dialog)  # none yet: the defaults
    dialog.uri.setText(libvirt_uri)
    with qtbot.waitSignal(dialog.checked, timeout=60_000) as got:
        qtbot.keyClick(dialog.uri, Qt.Key.Key_Return)
    assert got.args == [libvirt_uri, ""]
    assert window.settings.libvirt_uris() == [libvirt_uri]
    assert dialog.uris() == [libvirt_uri]
    assert "remembered" in dialog.result.text()
    assert not dialog.defaults.isVisibleTo(dialog)
    # Remembered: a new dialog lists it; removing it forgets it.
    dialog.close()
    window.actions.connect_libvirt.trigger()
    again = [d for d in window.findChildren(ConnectDialog) if d.isVisible()][-1]
    assert again.uris() == [libvirt_uri]
    again.list.setCurrentRow(0)
    with qtbot.waitSignal(again.urisChanged):
        again.remove.click()
    assert window.settings.libvirt_uris() == []
    assert again.uris() == []
    again.close()


def test_connect_dialog_shows_libvirts_reason_and_remembers_nothing(qtbot, window):
    dialog = ConnectDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.uri.setText(NO_DRIVER)
    with qtbot.waitSignal(dialog.checked, timeout=60_000) as got:
        dialog.add.click()
    uri, reason = got.args
    assert uri == NO_DRIVER and "no connection driver" in reason
    assert reason in dialog.result.text() and dialog.result.isVisibleTo(dialog)
    assert dialog.result.property("verdict") == "refused"
    assert window.settings.libvirt_uris() == []
    assert dialog.uri.text() == NO_DRIVER  # kept, to correct
    assert dialog.add.isEnabled()


# -- which VM uses each image


def test_a_defined_domain_shows_as_used_by_on_card_list_details_and_its_host(
    qtbot, window, open_dir, make, libvirt_uri, define_domain
):
    base = make.create("base.qcow2")
    top = make.overlay("web01.qcow2", "base.qcow2")
    name = f"web01-{secrets.token_hex(3)}"  # short: a card has room for all of it
    define_domain(disks=[top], name=name)
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(make.root)
    wait_uses(qtbot, window, str(top))
    snap = window.session.snapshot

    # The card of the disk's file, and of the base below it.
    line1, line2 = card_lines(window, str(top))
    assert line2 == f"used by {name} (shut off)"
    assert "disk " in line1  # the size moved up, still there
    assert card_lines(window, str(base))[1] == f"used by {name} (shut off)"
    [use] = snap.domains[str(base)]
    assert (use.name, use.disk, str(use.role), use.uri) == (name, "vda", "backing", libvirt_uri)

    # The list: a "Used by" column, shown because a VM uses an image; the tooltip says all.
    model = window.chains.model
    cell = model.index_of(str(top)).siblingAtColumn(USED_BY)
    assert cell.data() == f"{name} (shut off)"
    assert not window.chains.tree.header().isSectionHidden(USED_BY)
    tip = cell.data(Qt.ItemDataRole.ToolTipRole)
    assert f"used by {name} (shut off): vda, its disk&#x27;s file — {libvirt_uri}" in tip

    # Details: "Used by" with the VM, its state, the disk, how, and the connection.
    window.selection.set(str(base))
    text = window.details.toPlainText()
    assert "Used by" in text
    for word in (name, "shut off", "vda", "a backing file of its disk", libvirt_uri):
        assert word in text

    # The host's section: its VM, and the disk that is a scanned image selects it.
    panel = window.hosts
    titles = [panel.model.item(r, 0).text() for r in range(panel.model.rowCount())]
    assert any(t.endswith(f"— {libvirt_uri}") for t in titles), titles
    [row] = [i for i in disk_rows(panel) if i.data(NODE_ROLE) == str(top)]
    assert row.siblingAtColumn(1).data() == "in the scanned directory"
    assert row.parent().data() == name and row.parent().siblingAtColumn(1).data() == "shut off"
    window.selection.set(None)
    panel.tree.clicked.emit(row)
    assert window.selection.node == str(top)


def test_a_refresh_that_reads_the_same_hosts_builds_no_new_graph(
    qtbot, window, open_dir, make, libvirt_uri, define_domain
):
    top = make.create("solo.qcow2")
    define_domain(disks=[top])
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(make.root)
    wait_uses(qtbot, window, str(top))
    shown = window.session.snapshot
    with qtbot.waitSignal(window.session.hosts.localRead, timeout=60_000):
        window.actions.refresh_vms.trigger()
    assert window.session.snapshot is shown  # same domains: the graph stays as it is


def test_a_domain_defined_later_is_attached_without_scanning_again(
    qtbot, window, open_dir, make, libvirt_uri, define_domain
):
    top = make.create("late.qcow2")
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(make.root)
    first = window.session.snapshot
    assert str(top) not in first.domains
    dom = define_domain(disks=[top])
    window.actions.refresh_vms.trigger()
    wait_uses(qtbot, window, str(top))
    snap = window.session.snapshot
    assert snap.graph.scan is first.graph.scan  # the same walk: only the graph was built again
    assert snap.domains[str(top)][0].name == dom.name()


def test_a_long_vm_name_is_shortened_on_the_card_its_state_never(
    qtbot, window, open_dir, make, define_domain, libvirt_uri, monkeypatch
):
    top = make.create("long.qcow2")
    dom = define_domain(disks=[top], name="a-very-long-domain-name-" + secrets.token_hex(12))
    monkeypatch.setenv("IMAGEGUI_LIBVIRT_URIS", libvirt_uri)  # the defaults, tried quietly
    open_dir(make.root)  # nothing remembered
    wait_uses(qtbot, window, str(top))
    line2 = card_lines(window, str(top))[1]
    assert (
        line2.startswith("used by a-very")
        and line2.endswith("… (shut off)")
        or ("…" in line2 and line2.endswith(" (shut off)"))
    ), line2
    assert dom.name() not in line2


# -- a connection that fails


@pytest.mark.parametrize("uri", [NO_DRIVER, CLOSED_SSH])
def test_a_failing_connection_is_one_note_and_the_scan_still_shows(
    qtbot, window, open_dir, make, uri
):
    make.create("disk.qcow2")
    window.settings.set_libvirt_uris([uri])
    notes: list[str] = []
    hosts = window.session.hosts
    hosts.note.connect(notes.append)
    with qtbot.waitSignal(hosts.note, timeout=60_000):
        window.actions.refresh_vms.trigger()  # the remote hosts are read on a refresh
        open_dir(make.root)
    assert str(make.root / "disk.qcow2") in window.session.snapshot.graph.nodes
    assert window.statusBar().currentMessage().startswith(f"libvirt not reachable at {uri}: ")
    assert not window.findChildren(QMessageBox)  # a note, never a dialog
    qtbot.waitUntil(lambda: not hosts.reading, timeout=60_000)
    with qtbot.waitSignal(hosts.localRead, timeout=60_000):
        window.rescan()
    window.actions.refresh_vms.trigger()
    qtbot.waitUntil(lambda: not hosts.reading, timeout=60_000)
    assert len(notes) == 1  # the same failure at the next scan or refresh is not said again
    panel = window.hosts  # its section says why (a remote one beside this machine's defaults)
    [row] = [r for r in range(panel.model.rowCount()) if panel.model.item(r, 0).text() == uri]
    title = panel.model.item(row, 0)
    assert panel.model.item(row, 1).text() == "not reachable"
    assert title.child(0, 0).text().startswith("Not reachable: ")


def test_a_late_read_whose_vms_use_nothing_here_draws_nothing_twice(qtbot, window, open_dir, make):
    pytest.importorskip("libvirt")
    make.create("alone.qcow2")
    open_dir(make.root)
    shown = window.session.snapshot
    readies: list[None] = []
    window.ready.connect(lambda: readies.append(None))
    # libvirt's in-process test host: one VM, on /guest/diskimg1 (not a file here).
    window.settings.set_libvirt_uris(["test:///default"])
    window.actions.refresh_vms.trigger()
    qtbot.waitUntil(
        lambda: (
            shown.hosts is not None and [i.uri for i in shown.hosts.local] == ["test:///default"]
        ),
        timeout=60_000,
    )
    assert window.session.snapshot is shown and readies == []


# -- another host's images


def test_another_hosts_images_are_shown_from_its_section_and_only_shown(
    qtbot, window, make, define_pool, define_domain, ssh_libvirt_uri
):
    """A host over SSH (this machine's daemon through a loopback sshd): its section, then "Show
    This Host's Images" puts its volumes in the graph, read through libvirt, with every image
    action off saying why; Open Directory comes back to this machine's files."""
    make.create("base.qcow2", "qcow2", "16M")
    top = make.overlay("vm.qcow2", "base.qcow2")
    make.overlay("lost.qcow2", "gone.qcow2")
    define_pool(make.root)
    vm = define_domain(disks=[top]).name()  # a VM of that host: named on its volumes too
    window.settings.set_libvirt_uris([ssh_libvirt_uri])
    hosts, panel = window.session.hosts, window.hosts
    window.actions.refresh_vms.trigger()
    qtbot.waitUntil(
        lambda: any(s.uri == ssh_libvirt_uri and s.inventory for s in hosts.sections()),
        timeout=60_000,
    )
    [row] = [
        r
        for r in range(panel.model.rowCount())
        if panel.model.item(r, 0).text().endswith(f"— {ssh_libvirt_uri}")
    ]
    assert not panel.show_images.isEnabled()  # nothing selected yet
    panel.tree.setCurrentIndex(panel.model.index(row, 0))
    assert panel.show_images.isEnabled()
    with qtbot.waitSignal(window.ready, timeout=60_000):
        panel.show_images.click()
    snap = window.session.snapshot
    assert snap.remote_uri == ssh_libvirt_uri
    assert str(top) in snap.graph.nodes and str(make.root / "lost.qcow2") in snap.graph.nodes
    assert "missing-backing" in {str(p.kind) for p in snap.graph.problems}
    assert [(u.name, u.role, u.uri) for u in snap.domains[str(top)]] == [
        (vm, "top", ssh_libvirt_uri)
    ]
    assert [(u.name, u.role) for u in snap.domains[str(make.root / "base.qcow2")]] == [
        (vm, "backing")
    ]
    assert ssh_libvirt_uri in window.windowTitle()
    assert window.settings.recent_dirs() == []  # another host's pools are no recent directory

    window.selection.set(str(top))
    for name in ("overlay", "rebase", "commit", "flatten", "check", "launch"):
        action = getattr(window.actions, name)
        assert not action.isEnabled(), name
        assert f"the images of {ssh_libvirt_uri} are only shown here" in action.toolTip()
    assert not window.actions.reveal.isEnabled()

    # Rescan reads that host again; opening a directory comes back to this machine.
    with qtbot.waitSignal(window.ready, timeout=60_000):
        window.rescan()
    assert window.session.snapshot is not snap
    assert window.session.snapshot.remote_uri == ssh_libvirt_uri
    with qtbot.waitSignal(window.ready, timeout=60_000):
        window.open_directory(str(make.root))
    assert window.session.snapshot.remote_uri is None
    assert "only shown" not in window.actions.commit.toolTip()


def test_a_vm_whose_disk_is_gone_is_a_problem_and_its_host_says_missing(
    qtbot, window, open_dir, make, libvirt_uri, define_domain, tmp_path_factory
):
    gone = make.create("gone.qcow2")
    outside = tmp_path_factory.mktemp("elsewhere") / "lost.qcow2"
    make.create("other.qcow2")
    name = f"web02-{secrets.token_hex(3)}"
    define_domain(disks=[gone, outside], name=name)
    gone.unlink()  # deleted after the VM was defined: it will not start
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(make.root)
    wait_uses(qtbot, window, str(gone))
    snap = window.session.snapshot
    [problem] = [p for p in snap.graph.problems if str(p.kind) == "domain-disk-missing"]
    assert problem.path == str(gone) and name in problem.message
    titles = [
        window.problems.model.index(r, 0).data() for r in range(window.problems.model.rowCount())
    ]
    assert any(problem.title in (t or "") for t in titles), titles
    window.selection.set(str(gone))
    assert problem.title in window.details.toPlainText()
    where = {
        i.siblingAtColumn(2).data(): i.siblingAtColumn(1).data()
        for i in disk_rows(window.hosts)
        if i.parent().data() == name
    }
    assert where == {str(gone): "missing", str(outside): "missing"}
