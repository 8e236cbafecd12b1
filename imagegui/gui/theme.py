"""The one place the window's colours come from: derived from the current palette, light or dark.

Every colour the window draws itself - card fills and borders per state, the graph's background,
edges and selection, muted text, code blocks and links in the HTML panels, verdicts and job states
in the style sheet - is computed here from the application's ``QPalette``, so a dark desktop
palette (or the Appearance preference) gives readable text everywhere. No other module of the
GUI writes a colour literal (a test keeps it so).

Whether the theme is dark is decided by the palette's window colour: that is what the widgets are
drawn with, so it is what text must contrast with. (``QStyleHints.colorScheme()`` may say "dark"
while an application palette is light, or be ``Unknown`` on a bare X server; when the desktop's
scheme changes, Qt installs its palette, which is seen here.) Text colours are nudged until they
reach WCAG contrast 4.5:1 against the background they are drawn on.

:func:`current` is cheap (keyed by the palette's cache key); :func:`watcher` emits ``changed`` once
the palette or colour scheme has changed, and parts that cache colours (the graph scene, the HTML
panels, the style sheet) repaint from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QPalette, QPen
from PySide6.QtWidgets import QApplication, QWidget

from imagegui.core.chains.nodestate import State

#: WCAG 2 AA minimum contrast for normal text.
MIN_CONTRAST = 4.5

#: Appearance preference values.
SYSTEM, LIGHT, DARK = "system", "light", "dark"
APPEARANCES = (SYSTEM, LIGHT, DARK)

# -- colour arithmetic (WCAG 2 definitions)


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: QColor) -> float:
    """Relative luminance (WCAG 2): 0 for black, 1 for white."""
    return (
        0.2126 * _linear(colour.redF())
        + 0.7152 * _linear(colour.greenF())
        + 0.0722 * _linear(colour.blueF())
    )


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two opaque colours, 1.0 (same) to 21.0 (black on white)."""
    la, lb = luminance(a), luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` moved a fraction ``t`` of the way to ``b`` (opaque)."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * t,
        a.greenF() + (b.greenF() - a.greenF()) * t,
        a.blueF() + (b.blueF() - a.blueF()) * t,
    )


def readable(fg: QColor, *backgrounds: QColor, ratio: float = MIN_CONTRAST) -> QColor:
    """``fg`` as close to itself as possible while reaching ``ratio`` against every background:
    moved step by step towards black or white, whichever side the backgrounds leave room on."""
    if all(contrast(fg, bg) >= ratio for bg in backgrounds):
        return fg
    darkest = min(luminance(bg) for bg in backgrounds)
    lightest = max(luminance(bg) for bg in backgrounds)
    # White's worst case is the lightest background, black's the darkest: take the better.
    white_wins = 1.05 / (lightest + 0.05) > (darkest + 0.05) / 0.05
    target = QColor("white") if white_wins else QColor("black")
    for step in range(1, 21):
        c = mix(fg, target, step / 20)
        if all(contrast(c, bg) >= ratio for bg in backgrounds):
            return c
    return target


# -- semantic hues, one per meaning, a light-theme and a dark-theme variant

#: (on a light palette, on a dark palette): strong enough for borders, icons and markers.
_HUES: dict[str, tuple[str, str]] = {
    "ok": ("#27ae60", "#3fbf74"),
    "warning": ("#d99a00", "#e3ad2d"),
    "error": ("#d0392b", "#f0604f"),
    "unusable": ("#c0392b", "#e0655a"),
    "in_use": ("#2e86de", "#57a0ec"),
    "unused": ("#8395a7", "#8d9db0"),
    "protocol": ("#8e44ad", "#b57fd6"),
    "external": ("#576574", "#8795a3"),
    "selection": ("#1f6fd1", "#5aa2ff"),
    "link": ("#1a5fb4", "#8cc2ff"),
}

#: The hue each card state is drawn in; placeholders (dashed) are filled with the base colour.
_STATE_HUE: dict[str, str] = {
    "ok": "ok",
    "warning": "warning",
    "error": "error",
    "unusable": "unusable",
    "in use": "in_use",
    "unused base": "unused",
    "missing": "error",
    "unreadable": "error",
    "protocol": "protocol",
    "external": "external",
}
_PLACEHOLDERS = {"missing", "unreadable", "protocol"}
#: How far a card's fill is tinted from the base colour towards its hue.
_TINT = (0.17, 0.24)


@dataclass(frozen=True)
class CardStyle:
    """What one card state is painted with (shared objects: 10,000 cards cost a few brushes)."""

    fill: QColor
    border: QColor
    text: QColor
    subtext: QColor
    brush: QBrush
    pen: QPen


@dataclass(frozen=True)
class Verdict:
    """Foreground and background of the plan dialogs' verdict line."""

    fg: QColor
    bg: QColor


@dataclass
class Theme:
    """Every colour the window draws itself, for one palette."""

    dark: bool
    base: QColor
    window: QColor
    text: QColor
    #: Secondary text (hints, explanations, table headings) on base, alternate base and window.
    muted: QColor
    link: QColor
    code_bg: QColor
    code_text: QColor
    #: Lines between rows of the operations and VM panels.
    rule: QColor
    scene_bg: QColor
    edge: QColor
    loop: QColor
    selection: QColor
    #: Toolbar and menu icons' strokes (3:1 against the window, as WCAG asks of graphics).
    icon_ink: QColor
    #: Strong colours for text on base (verdicts' foreground, job states, warnings in dialogs).
    ok_text: QColor
    warning_text: QColor
    error_text: QColor
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    cards: dict[str, CardStyle] = field(default_factory=dict)

    def hue(self, name: str) -> QColor:
        return QColor(_HUES[name][1 if self.dark else 0])

    def card(self, state: State | str) -> CardStyle:
        """The style of a card in ``state`` (an unknown state is drawn as ok rather than fail)."""
        return self.cards.get(str(state)) or self.cards["ok"]

    @classmethod
    def from_palette(cls, pal: QPalette) -> Theme:
        group = QPalette.ColorGroup.Active
        base = pal.color(group, QPalette.ColorRole.Base)
        window = pal.color(group, QPalette.ColorRole.Window)
        alt = pal.color(group, QPalette.ColorRole.AlternateBase)
        text = pal.color(group, QPalette.ColorRole.Text)
        dark = window.lightnessF() < 0.5
        i = 1 if dark else 0

        def hue(name: str) -> QColor:
            return QColor(_HUES[name][i])

        grounds = (base, alt, window)
        muted = readable(mix(text, base, 0.42), *grounds)
        code_bg = mix(base, text, 0.07)
        t = cls(
            dark=dark,
            base=base,
            window=window,
            text=text,
            muted=muted,
            link=readable(hue("link"), *grounds),
            code_bg=code_bg,
            code_text=readable(text, code_bg),
            rule=mix(window, text, 0.18),
            scene_bg=mix(window, base, 0.45) if not dark else mix(base, window, 0.35),
            edge=mix(text, base, 0.5),
            loop=hue("error"),
            selection=hue("selection"),
            icon_ink=readable(
                QColor(ICON_INK)
                if not dark
                else mix(pal.color(QPalette.ColorRole.WindowText), window, 0.12),
                window,
                pal.color(group, QPalette.ColorRole.Button),
                ratio=3.0,
            ),
            ok_text=readable(hue("ok"), *grounds),
            warning_text=readable(hue("warning"), *grounds),
            error_text=readable(hue("error"), *grounds),
        )
        tint = _TINT[i]
        for name, key in (("ok", "ok"), ("warning", "warning"), ("refused", "error")):
            bg = mix(base, hue(key), tint * 0.7)
            t.verdicts[name] = Verdict(readable(hue(key), bg), bg)
        # A forced override is a loud red block: white text on a red dark enough to read it.
        forced_bg = readable(hue("error"), QColor("white"))
        t.verdicts["forced"] = Verdict(QColor("white"), forced_bg)
        pending_bg = mix(base, text, 0.06)
        t.verdicts["pending"] = Verdict(readable(muted, pending_bg), pending_bg)
        for state, key in _STATE_HUE.items():
            border = hue(key)
            placeholder = state in _PLACEHOLDERS
            # Unusable (the chain is broken further down) is paler than the break itself.
            fill = (
                base if placeholder else mix(base, border, tint * (0.6 if key == "unusable" else 1))
            )
            pen = QPen(border, 1.6, Qt.PenStyle.DashLine if placeholder else Qt.PenStyle.SolidLine)
            t.cards[state] = CardStyle(
                fill=fill,
                border=border,
                text=readable(text, fill),
                subtext=readable(mix(text, fill, 0.3), fill),
                brush=QBrush(fill),
                pen=pen,
            )
        return t

    # -- for the HTML panels and the style sheet

    def html_css(self) -> str:
        """A default style sheet for QTextDocument HTML: the classes the panels use."""
        return (
            f"a {{ color: {self.link.name()}; }}\n"
            f".muted {{ color: {self.muted.name()}; }}\n"
            f".error {{ color: {self.error_text.name()}; }}\n"
            f".warning {{ color: {self.warning_text.name()}; }}\n"
            f".ok {{ color: {self.ok_text.name()}; }}\n"
            f"pre.code {{ background-color: {self.code_bg.name()}; "
            f"color: {self.code_text.name()}; }}\n"
        )

    def qss_values(self) -> dict[str, str]:
        """The ``@name`` tokens of ``resources/style.qss``."""
        values = {
            "muted": self.muted,
            "rule": self.rule,
            "ok": self.ok_text,
            "warning": self.warning_text,
            "error": self.error_text,
            "link": self.link,
        }
        out = {k: v.name() for k, v in values.items()}
        for name, v in self.verdicts.items():
            out[f"verdict_{name}_fg"] = v.fg.name()
            out[f"verdict_{name}_bg"] = v.bg.name()
        return out


#: The stroke colour the monochrome icons in ``resources/icons`` are drawn with.
ICON_INK = "#34495e"


def icon_svg(svg: str) -> str:
    """A monochrome icon's SVG with its ink in the current theme's icon colour (the designed dark
    slate on a light palette, a light one on a dark palette)."""
    return svg.replace(ICON_INK, current().icon_ink.name())


_cache: tuple[int, Theme] | None = None


def current() -> Theme:
    """The theme of the application's current palette (recomputed only when it changes)."""
    global _cache
    pal = QGuiApplication.palette()
    key = pal.cacheKey()
    if _cache is None or _cache[0] != key:
        _cache = (key, Theme.from_palette(pal))
    return _cache[1]


def state_names() -> list[str]:
    """Every card state drawn, including ones the core may not define yet (``unusable``)."""
    names = [str(s) for s in State]
    return names + [n for n in _STATE_HUE if n not in names]


def stylesheet(template: str, theme: Theme | None = None) -> str:
    """``resources/style.qss`` with its ``@name`` tokens filled from the theme. Longest names
    first, so ``@verdict_ok_fg`` is not taken for ``@ok``."""
    values = (theme or current()).qss_values()
    for name in sorted(values, key=len, reverse=True):
        template = template.replace("@" + name, values[name])
    return template


# -- live changes


class _Probe(QWidget):
    """A never-shown widget: Qt sends every widget ``ApplicationPaletteChange`` when the
    application palette changes (an event filter on the application would see every event of
    the program instead)."""

    def __init__(self, owner: ThemeWatcher):
        super().__init__()
        self._owner = owner

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ApplicationPaletteChange:
            self._owner.check()
        return super().event(e)


class ThemeWatcher(QObject):
    """Emits ``changed`` once per change of the colours (palette or colour scheme)."""

    changed = Signal()

    def __init__(self):
        super().__init__()
        self._key = QGuiApplication.palette().cacheKey()
        self._probe = _Probe(self)
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(lambda _scheme: self.check())

    def check(self) -> None:
        key = QGuiApplication.palette().cacheKey()
        if key != self._key:
            self._key = key
            self.changed.emit()


_watcher: ThemeWatcher | None = None


def watcher() -> ThemeWatcher:
    global _watcher
    if _watcher is None:
        _watcher = ThemeWatcher()
    return _watcher


# -- the application: style sheet and the Appearance preference


def _fill(pal: QPalette, roles: dict[QPalette.ColorRole, str], group=None) -> None:
    for role, colour in roles.items():
        if group is None:
            pal.setColor(role, QColor(colour))
        else:
            pal.setColor(group, role, QColor(colour))


def dark_palette() -> QPalette:
    """A complete dark palette for the Fusion style (used when the platform cannot switch)."""
    R = QPalette.ColorRole
    pal = QPalette()
    _fill(
        pal,
        {
            R.Window: "#2b2d31",
            R.WindowText: "#e3e5e8",
            R.Base: "#1e1f22",
            R.AlternateBase: "#26282c",
            R.ToolTipBase: "#393b40",
            R.ToolTipText: "#e3e5e8",
            R.PlaceholderText: "#8d939c",
            R.Text: "#e3e5e8",
            R.Button: "#34363b",
            R.ButtonText: "#e3e5e8",
            R.BrightText: "#ff7a6b",
            R.Light: "#4a4d53",
            R.Midlight: "#3d4045",
            R.Mid: "#2a2c30",
            R.Dark: "#18191b",
            R.Shadow: "#0c0c0d",
            R.Highlight: "#2f6fc9",
            R.HighlightedText: "#ffffff",
            R.Link: "#8cc2ff",
            R.LinkVisited: "#c6a4ff",
        },
    )
    if hasattr(R, "Accent"):
        pal.setColor(R.Accent, QColor("#2f6fc9"))
    _fill(
        pal,
        {
            R.WindowText: "#7d828a",
            R.Text: "#7d828a",
            R.ButtonText: "#7d828a",
            R.Highlight: "#45484e",
            R.HighlightedText: "#a6abb2",
            R.Base: "#232427",
            R.Button: "#2e3034",
        },
        QPalette.ColorGroup.Disabled,
    )
    return pal


def light_palette() -> QPalette:
    """Fusion's own light palette, with links, the selection and placeholder texts reaching
    4.5:1 (Fusion's selection blue gives white text 3.7:1, its placeholder grey about 4:1)."""
    pal = QApplication.style().standardPalette() if QApplication.instance() else QPalette()
    if pal.color(QPalette.ColorRole.Window).lightnessF() < 0.5:
        pal = QPalette(QColor("#efefef"))
        _fill(pal, {QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.Text: "#000000"})
        pal.setColor(QPalette.ColorRole.AlternateBase, QColor("#f7f7f7"))
    pal.setColor(QPalette.ColorRole.Link, QColor(_HUES["link"][0]))
    highlight = pal.color(QPalette.ColorRole.Highlight)
    selected = pal.color(QPalette.ColorRole.HighlightedText)
    base = pal.color(QPalette.ColorRole.Base)
    placeholder = pal.color(QPalette.ColorRole.PlaceholderText)
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        pal.setColor(group, QPalette.ColorRole.Highlight, readable(highlight, selected))
        pal.setColor(group, QPalette.ColorRole.PlaceholderText, readable(placeholder, base))
    return pal


_original_style: str | None = None
_template: str | None = None


def apply_appearance(app: QApplication, mode: str) -> None:
    """System: the desktop's palette; Light / Dark: that colour scheme, asked of the platform
    (``QStyleHints.setColorScheme``, Qt 6.8+) and set as an explicit palette on Fusion, so the
    result is the same whether or not the platform can switch (a bare X server cannot)."""
    global _original_style
    hints = QGuiApplication.styleHints()
    if _original_style is None:
        _original_style = app.style().name()
    if mode not in (LIGHT, DARK):
        if hasattr(hints, "unsetColorScheme"):
            hints.unsetColorScheme()
        if app.style().name().lower() != _original_style.lower():
            app.setStyle(_original_style)
        app.setPalette(QPalette())  # no role set: back to the platform's palette
        return
    if hasattr(hints, "setColorScheme"):
        hints.setColorScheme(Qt.ColorScheme.Dark if mode == DARK else Qt.ColorScheme.Light)
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    app.setPalette(dark_palette() if mode == DARK else light_palette())


def install(app: QApplication, template: str) -> None:
    """Sets the style sheet made from ``template`` and keeps it in step with the palette."""
    global _template
    first = _template is None
    _template = template
    app.setStyleSheet(stylesheet(template))
    if first:
        watcher().changed.connect(_restyle)


def _restyle() -> None:
    app = QApplication.instance()
    if _template is not None and isinstance(app, QApplication):
        sheet = stylesheet(_template)
        if app.styleSheet() != sheet:
            app.setStyleSheet(sheet)


def uninstall(app: QApplication) -> None:
    """Drops the style sheet (tests that installed it put the application back)."""
    global _template
    if _template is not None:
        watcher().changed.disconnect(_restyle)
    _template = None
    app.setStyleSheet("")


def resolve_appearance(cli: str | None, env: str | None, saved: str) -> str:
    """The command line wins, then ``IMAGEGUI_THEME``, then the preference."""
    for value in (cli, env, saved):
        if value and value.lower() in APPEARANCES:
            return value.lower()
    return SYSTEM
