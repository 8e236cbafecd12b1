"""Light and dark: every text the window draws reaches WCAG contrast 4.5:1 on the palette in use,
the graph follows the palette live, and no module outside gui/theme.py writes a colour."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tokenize
from collections import Counter
from pathlib import Path

import pytest
from imagebytes import qcow2_drop_backing_format
from PySide6.QtCore import QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QTextFormat
from PySide6.QtWidgets import QApplication, QLabel, QTreeView

import imagegui
from imagegui.gui import resources, theme
from imagegui.gui.app import parse_args
from imagegui.gui.dialogs.preferences_dialog import PreferencesDialog

GUI = Path(imagegui.__file__).parent / "gui"
HEX = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|#[0-9a-fA-F]{8}\b")
NAMED = re.compile(r"QColor\(\s*['\"]|Qt\.GlobalColor\.(?!transparent)|Qt\.(white|black|red)\b")


# -- fixtures


@pytest.fixture
def appearance(qapp):
    """``appearance(mode)`` puts the application in light or dark, with the style sheet;
    afterwards the application is back to the platform's palette and no style sheet."""

    def run(mode: str) -> theme.Theme:
        theme.apply_appearance(qapp, mode)
        theme.install(qapp, resources.stylesheet())
        qapp.processEvents()
        return theme.current()

    yield run
    theme.apply_appearance(qapp, theme.SYSTEM)
    theme.uninstall(qapp)


@pytest.fixture
def every_state(make, tmp_path):
    """Real images in (almost) every state a card can have: ok, error, unusable, missing,
    warning, protocol, a loop."""
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("top.qcow2", "base.qcow2")
    make.overlay("lost.qcow2", "gone.qcow2")
    make.overlay("above-lost.qcow2", "lost.qcow2")  # unusable: its chain breaks below
    qcow2_drop_backing_format(make.overlay("noformat.qcow2", "base.qcow2"))
    make.overlay("net.qcow2", "nbd://storage.example:10809/disk", backing_fmt="raw")
    make.overlay("loop-a.qcow2", "loop-b.qcow2")
    make.overlay("loop-b.qcow2", "loop-a.qcow2")
    make.create("plain.raw", "raw", "1M")
    return tmp_path


# -- helpers


def _colour(value) -> QColor | None:
    if value is None:
        return None
    if isinstance(value, QColor):
        return value
    return value.color()  # a QBrush


def _indexes(model, parent: QModelIndex | None = None):
    parent = parent or QModelIndex()
    for row in range(model.rowCount(parent)):
        for col in range(model.columnCount(parent)):
            yield model.index(row, col, parent)
        yield from _indexes(model, model.index(row, 0, parent))


def _model_contrast_failures(tree: QTreeView) -> list[str]:
    """Each item's text colour (its ForegroundRole or the view's Text) against each background
    it can be drawn on: its BackgroundRole, or Base and - rows alternate - AlternateBase."""
    pal = tree.palette()
    group = QPalette.ColorGroup.Active
    grounds = [pal.color(group, QPalette.ColorRole.Base)]
    if tree.alternatingRowColors():
        grounds.append(pal.color(group, QPalette.ColorRole.AlternateBase))
    failures = []
    model = tree.model()
    for index in _indexes(model):
        if not index.data(Qt.ItemDataRole.DisplayRole):
            continue
        fg = _colour(index.data(Qt.ItemDataRole.ForegroundRole)) or pal.color(
            group, QPalette.ColorRole.Text
        )
        bg = _colour(index.data(Qt.ItemDataRole.BackgroundRole))
        for ground in [bg] if bg is not None else grounds:
            ratio = theme.contrast(fg, ground)
            if ratio < theme.MIN_CONTRAST:
                failures.append(f"{index.data()!r}: {fg.name()} on {ground.name()} = {ratio:.2f}")
    selected = theme.contrast(
        pal.color(group, QPalette.ColorRole.HighlightedText),
        pal.color(group, QPalette.ColorRole.Highlight),
    )
    if selected < theme.MIN_CONTRAST:
        failures.append(f"selected rows: {selected:.2f}")
    return failures


def _text_contrast(image: QImage, rect) -> tuple[float, QColor, QColor] | None:
    """In a rectangle of a grabbed image: the most common colour (the background) and the
    pixel that stands out most from it (a glyph's stem); None when it is all background."""
    counts: Counter[int] = Counter()
    pixels = []
    for y in range(max(0, rect.top()), min(image.height(), rect.bottom())):
        for x in range(max(0, rect.left()), min(image.width(), rect.right())):
            rgb = image.pixel(x, y) & 0xFFFFFF
            counts[rgb] += 1
            pixels.append(rgb)
    if not counts:
        return None
    bg = QColor.fromRgb(counts.most_common(1)[0][0])
    best = max(set(pixels), key=lambda p: theme.contrast(QColor.fromRgb(p), bg))
    fg = QColor.fromRgb(best)
    ratio = theme.contrast(fg, bg)
    return (ratio, fg, bg) if ratio > 1.05 else None


def _pixel_contrast_failures(tree: QTreeView, first_col: int) -> list[str]:
    """Every visible cell with text (columns from ``first_col``: no icons) in a grab of the
    view: its glyphs against its background as actually painted (style sheet included)."""
    image = tree.viewport().grab().toImage()
    failures = []
    checked = 0
    model = tree.model()
    for index in _indexes(model):
        if index.column() < first_col or not index.data():
            continue
        if not any(ch.isalnum() for ch in str(index.data())):
            continue  # "." (the root's folder): an antialiased dot has no fully inked pixel
        rect = tree.visualRect(index).adjusted(3, 1, -3, -1)
        if rect.isEmpty() or not tree.viewport().rect().contains(rect.center()):
            continue
        found = _text_contrast(image, rect)
        if found is None:
            continue
        checked += 1
        ratio, fg, bg = found
        if ratio < theme.MIN_CONTRAST:
            failures.append(f"{index.data()!r}: {fg.name()} on {bg.name()} = {ratio:.2f}")
    assert checked >= 3, "no text found in the grab"
    return failures


def _document_contrast_failures(browser) -> list[str]:
    """Every run of text in a QTextBrowser's document against the block's background (or the
    view's Base): the colours the HTML asked for, through the theme's style sheet."""
    pal = browser.viewport().palette()
    base = pal.color(QPalette.ColorRole.Base)
    text = pal.color(QPalette.ColorRole.Text)
    failures = []
    block = browser.document().begin()
    runs = 0
    while block.isValid():
        fmt = block.blockFormat()
        ground = (
            fmt.background().color()
            if fmt.hasProperty(QTextFormat.Property.BackgroundBrush)
            else base
        )
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid() and frag.text().strip():
                cf = frag.charFormat()
                fg = (
                    cf.foreground().color()
                    if cf.hasProperty(QTextFormat.Property.ForegroundBrush)
                    else text
                )
                bg = (
                    cf.background().color()
                    if cf.hasProperty(QTextFormat.Property.BackgroundBrush)
                    else ground
                )
                runs += 1
                ratio = theme.contrast(fg, bg)
                if ratio < theme.MIN_CONTRAST:
                    failures.append(f"{frag.text()[:40]!r}: {fg.name()} on {bg.name()} {ratio:.2f}")
            it += 1
        block = block.next()
    assert runs >= 5
    return failures


def _document_colours(browser) -> set[str]:
    found = set()
    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            cf = it.fragment().charFormat()
            if cf.hasProperty(QTextFormat.Property.ForegroundBrush):
                found.add(cf.foreground().color().name())
            it += 1
        block = block.next()
    return found


# -- the window under both palettes


@pytest.mark.parametrize("mode", [theme.LIGHT, theme.DARK])
def test_lists_details_and_graph_are_readable(
    qtbot, window, open_dir, every_state, appearance, mode
):
    t = appearance(mode)
    assert t.dark == (mode == theme.DARK)
    open_dir(every_state)
    snap = window.session.snapshot
    window.chains.tree.expandAll()
    window.problems.tree.expandAll()
    lost = str(every_state / "lost.qcow2")
    window.selection.set(lost)
    qtbot.waitUntil(lambda: window.details.node == lost)

    # The lists: every item by its colours, every visible cell as painted.
    for tree, first in ((window.chains.tree, 1), (window.problems.tree, 1)):
        base = tree.palette().color(QPalette.ColorRole.Base)
        assert (theme.luminance(base) < 0.2) == t.dark, "the list is not in the palette's colours"
        assert _model_contrast_failures(tree) == []
        assert _pixel_contrast_failures(tree, first) == []

    # The details panel: its HTML's colours, and its background as painted.
    details = window.details
    colours = _document_colours(details)
    assert t.muted.name() in colours and t.link.name() in colours  # the theme's, not the default
    assert _document_contrast_failures(details) == []
    painted = details.viewport().grab().toImage()
    corner = QColor(painted.pixel(painted.width() - 4, painted.height() - 4))
    assert theme.contrast(corner, t.base) < 1.1

    # The graph: every state's card text on its fill, and the cards of these images as painted.
    for state in theme.state_names():
        card = t.card(state)
        assert theme.contrast(card.text, card.fill) >= theme.MIN_CONTRAST, state
        assert theme.contrast(card.subtext, card.fill) >= theme.MIN_CONTRAST, state
    scene = window.scene
    assert scene.backgroundBrush().color() == t.scene_bg
    states = set()
    for node in scene.shown_nodes():
        state = snap.status[node].state
        states.add(str(state))
        assert scene.box_item(node).brush().color() == t.card(state).fill
        rect = scene.node_rect(node)
        image = QImage(int(rect.width()), int(rect.height()), QImage.Format.Format_RGB32)
        painter = QPainter(image)
        scene.render(painter, QRectF(image.rect()), rect)
        painter.end()
        name_area = QRectF(40, 8, rect.width() - 48, 22).toRect()
        found = _text_contrast(image, name_area)
        assert found is not None, f"no name painted on {node}"
        ratio, fg, bg = found
        assert ratio >= theme.MIN_CONTRAST, f"{node}: {fg.name()} on {bg.name()} = {ratio:.2f}"
        assert theme.contrast(bg, t.card(state).fill) < 1.1
    assert {"ok", "error", "unusable", "warning", "missing", "protocol"} <= states


def test_graph_and_details_follow_a_palette_change_live(qtbot, window, open_dir, make, appearance):
    make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    light = appearance(theme.LIGHT)
    open_dir(make.root)
    window.selection.set(top)
    scene = window.scene
    item = scene.box_item(top)
    assert item.brush().color() == light.card("ok").fill
    light_html = window.details.toHtml()

    dark = appearance(theme.DARK)  # no rescan, no new layout: the same items recoloured
    assert scene.box_item(top) is item
    assert scene.backgroundBrush().color() == dark.scene_bg
    assert item.brush().color() == dark.card("ok").fill
    assert theme.luminance(item.brush().color()) < 0.1
    assert scene._ring.pen().color() == dark.selection
    assert window.details.toHtml() != light_html  # re-rendered with the dark colours
    assert _document_contrast_failures(window.details) == []
    sheet = QApplication.instance().styleSheet()
    assert dark.muted.name() in sheet and light.muted.name() not in sheet


# -- the Appearance preference


def test_appearance_is_remembered_and_applied(qtbot, qapp, settings, appearance):
    assert settings.appearance() == theme.SYSTEM
    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    dialog.appearance.setCurrentIndex(dialog.appearance.findData(theme.DARK))
    dialog.accept()
    assert settings.appearance() == theme.DARK
    assert theme.current().dark
    assert qapp.palette().color(QPalette.ColorRole.Window).lightnessF() < 0.5

    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.appearance.currentData() == theme.DARK
    dialog.appearance.setCurrentIndex(dialog.appearance.findData(theme.SYSTEM))
    dialog.accept()
    assert settings.appearance() == theme.SYSTEM
    assert qapp.palette() == qapp.style().standardPalette() or not theme.current().dark


def test_theme_on_the_command_line_wins():
    assert parse_args(["--theme", "dark"]).theme == "dark"
    assert theme.resolve_appearance("dark", "light", "system") == "dark"
    assert theme.resolve_appearance(None, "light", "dark") == "light"
    assert theme.resolve_appearance(None, None, "dark") == "dark"
    assert theme.resolve_appearance(None, "nonsense", "bogus") == "system"


def test_readable_reaches_the_ratio_on_both_sides():
    white, black, grey = QColor("white"), QColor("black"), QColor("#777777")
    assert theme.contrast(white, black) == pytest.approx(21.0)
    assert theme.contrast(grey, grey) == pytest.approx(1.0)
    assert theme.contrast(theme.readable(grey, white), white) >= theme.MIN_CONTRAST
    assert theme.contrast(theme.readable(grey, QColor("#202020")), QColor("#202020")) >= 4.5
    near_white = QColor("#f6f8fa")  # the alternate row colour that broke the dark palette
    assert theme.contrast(theme.readable(white, near_white), near_white) >= theme.MIN_CONTRAST


# -- keeping it so


def _string_literals(path: Path):
    with path.open("rb") as f:
        for tok in tokenize.tokenize(f.readline):
            # f-strings are several tokens from Python 3.12 on
            if tok.type in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)):
                yield tok.start[0], tok.string


def test_no_colour_literal_outside_the_theme():
    """Colours come from gui/theme.py (derived from the palette); a literal elsewhere breaks
    one palette or the other. In HTML use class='muted' / 'error' / 'warning' / 'ok' and
    <pre class='code'>; in widgets an objectName the style sheet colours (hint, danger,
    verdict) or theme.current()."""
    offenders = []
    for path in sorted(GUI.rglob("*.py")):
        if path.name == "theme.py":
            continue
        source = path.read_text(encoding="utf-8")
        for line, literal in _string_literals(path):
            if HEX.search(literal):
                offenders.append(f"{path.relative_to(GUI)}:{line}: {literal[:60]}")
        for m in NAMED.finditer(source):
            line = source.count("\n", 0, m.start()) + 1
            offenders.append(f"{path.relative_to(GUI)}:{line}: {m.group(0)}")
    sheet = resources.stylesheet()
    offenders += [f"style.qss: {m}" for m in HEX.findall(sheet)]
    assert offenders == []


def test_the_style_sheet_has_no_token_left_unfilled():
    for pal in (theme.light_palette(), theme.dark_palette()):
        sheet = theme.stylesheet(resources.stylesheet(), theme.Theme.from_palette(pal))
        assert re.findall(r"@\w+", sheet) == []


def test_no_hex_check_sees_literals(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("x = f\"<b style='color:#c0392b'>\"\n", encoding="utf-8")
    assert any(HEX.search(s) for _, s in _string_literals(bad))
    assert NAMED.search("y = QColor('white')") and not NAMED.search("Qt.GlobalColor.transparent")


def _ink(icon) -> QColor:
    """The colour of an icon's most opaque pixel: its stroke."""
    image = icon.pixmap(24, 24).toImage()
    best = max(
        (image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())),
        key=lambda c: c.alpha(),
    )
    best.setAlpha(255)
    return best


def test_toolbar_icons_follow_the_palette(qapp, appearance):
    icon = resources.icon("document-open")  # the same QIcon the toolbar holds
    light = appearance(theme.LIGHT)
    assert theme.contrast(_ink(icon), light.window) >= 3.0
    dark = appearance(theme.DARK)
    ink = _ink(icon)
    assert theme.contrast(ink, dark.window) >= 3.0
    assert theme.luminance(ink) > 0.4  # a light stroke on the dark window


def _shoot(tmp_path, *extra: str, env_theme: str | None = None) -> QImage:
    out = tmp_path / f"shot{len(list(tmp_path.glob('shot*')))}.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("IMAGEGUI_THEME", None)
    if env_theme:
        env["IMAGEGUI_THEME"] = env_theme
    proc = subprocess.run(
        [sys.executable, "-m", "imagegui", str(tmp_path / "images"), "--screenshot", str(out),
         "--size", "900x600", *extra],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return QImage(str(out))


def _mostly(image: QImage) -> QColor:
    counts = Counter(
        image.pixel(x, y) & 0xFFFFFF
        for x in range(0, image.width(), 7)
        for y in range(0, image.height(), 7)
    )
    return QColor.fromRgb(counts.most_common(1)[0][0])


def test_theme_from_the_command_line_and_the_environment(make, tmp_path):
    make.create("images/base.qcow2", "qcow2", "1G")
    make.overlay("images/top.qcow2", "base.qcow2")
    assert theme.luminance(_mostly(_shoot(tmp_path, "--theme", "dark"))) < 0.1
    assert theme.luminance(_mostly(_shoot(tmp_path, env_theme="dark"))) < 0.1
    # the command line wins over the environment
    assert theme.luminance(_mostly(_shoot(tmp_path, "--theme", "light", env_theme="dark"))) > 0.6


@pytest.mark.parametrize("mode", [theme.LIGHT, theme.DARK])
def test_style_sheet_colours_are_readable(qtbot, appearance, mode):
    """Labels the style sheet colours (hints, job states, verdicts, warnings) as painted: their
    text against their own background or the window behind them."""
    t = appearance(mode)
    cases = [("hint", None, None), ("danger", None, None)]
    cases += [("jobState", "state", s) for s in ("failed", "cancelled", "done")]
    cases += [("verdict", "verdict", v) for v in ("ok", "warning", "refused", "forced", "pending")]
    for name, prop, value in cases:
        label = QLabel("Refused: 8 images will be corrupted")
        qtbot.addWidget(label)
        label.setObjectName(name)
        if prop:
            label.setProperty(prop, value)
        label.resize(320, 40)
        label.ensurePolished()
        image = label.grab().toImage()
        found = _text_contrast(image, image.rect().adjusted(8, 4, -8, -4))
        assert found is not None, (name, value)
        ratio, fg, bg = found
        assert ratio >= theme.MIN_CONTRAST, f"{name} {value}: {fg.name()} on {bg.name()}"
        if name == "verdict":
            assert theme.contrast(bg, t.verdicts[value].bg) < 1.05  # its own colour is painted


def _desktop_palette(window: str, base: str, alt: str, text: str, link: str) -> QPalette:
    pal = QPalette(QColor(window))
    for role, colour in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, alt),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Link, link),
    ):
        pal.setColor(role, QColor(colour))
    return pal


@pytest.mark.parametrize(
    "pal",
    [
        pytest.param(theme.light_palette, id="fusion-light"),
        pytest.param(theme.dark_palette, id="imagegui-dark"),
        pytest.param(
            lambda: _desktop_palette("#202326", "#141618", "#1d1f22", "#fcfcfc", "#1d99f3"),
            id="breeze-dark",
        ),
        pytest.param(
            lambda: _desktop_palette("#242424", "#1e1e1e", "#2a2a2a", "#ffffff", "#0000ff"),
            id="bad-link",
        ),
        pytest.param(
            lambda: _desktop_palette("#ffffff", "#ffffff", "#f0f0f0", "#000000", "#0000ee"),
            id="white",
        ),
        pytest.param(
            lambda: _desktop_palette("#000000", "#000000", "#101010", "#ffffff", "#ffff00"),
            id="black",
        ),
    ],
)
def test_every_derived_text_colour_is_readable_on_desktop_palettes(qapp, pal):
    """The system palette may be anyone's: what the theme derives from it still reads."""
    pal = pal()
    t = theme.Theme.from_palette(pal)
    grounds = [t.base, t.window, pal.color(QPalette.ColorRole.AlternateBase)]
    for name in ("muted", "link", "ok_text", "warning_text", "error_text"):
        for ground in grounds:
            assert theme.contrast(getattr(t, name), ground) >= theme.MIN_CONTRAST, name
    assert theme.contrast(t.code_text, t.code_bg) >= theme.MIN_CONTRAST
    for name, v in t.verdicts.items():
        assert theme.contrast(v.fg, v.bg) >= theme.MIN_CONTRAST, name
    for state in theme.state_names():
        card = t.card(state)
        assert theme.contrast(card.text, card.fill) >= theme.MIN_CONTRAST, state
        assert theme.contrast(card.subtext, card.fill) >= theme.MIN_CONTRAST, state
    assert theme.contrast(t.icon_ink, t.window) >= 3.0


@pytest.mark.parametrize("make_palette", [theme.light_palette, theme.dark_palette])
def test_own_palettes_read(qapp, make_palette):
    """The palettes Light and Dark install: text, selected text, placeholders, tooltips."""
    pal = make_palette()
    R = QPalette.ColorRole
    for fg, bg in (
        (R.Text, R.Base),
        (R.Text, R.AlternateBase),
        (R.WindowText, R.Window),
        (R.ButtonText, R.Button),
        (R.HighlightedText, R.Highlight),
        (R.PlaceholderText, R.Base),
        (R.ToolTipText, R.ToolTipBase),
        (R.Link, R.Base),
    ):
        ratio = theme.contrast(pal.color(fg), pal.color(bg))
        assert ratio >= theme.MIN_CONTRAST, f"{fg.name} on {bg.name}: {ratio:.2f}"


def _pixmap_ink(pm) -> QColor:
    image = pm.toImage()
    best = max(
        (image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())),
        key=lambda c: c.alpha(),
    )
    best.setAlpha(255)
    return best


def test_painted_icons_follow_the_palette(qtbot, qapp, appearance):
    """The badges the graph paints and the VMs panel's icon are cached pixmaps: drawn for the
    light palette, they must not stay dark-on-dark after switching (nor light-on-light back)."""
    from imagegui.gui.resources import IconLabel

    light = appearance(theme.LIGHT)
    label = IconLabel("vm", 20)
    qtbot.addWidget(label)
    assert theme.contrast(_pixmap_ink(resources.pixmap("vm", 20)), light.window) >= 3.0
    dark = appearance(theme.DARK)
    ink = _pixmap_ink(resources.pixmap("vm", 20))
    assert theme.contrast(ink, dark.window) >= 3.0 and theme.luminance(ink) > 0.4
    assert _pixmap_ink(label.pixmap()) == ink  # the label was drawn again in the new ink
    light = appearance(theme.LIGHT)
    assert theme.contrast(_pixmap_ink(label.pixmap()), light.window) >= 3.0
