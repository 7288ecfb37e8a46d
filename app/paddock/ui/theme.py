"""The window's one look: a light and a dark palette (chosen by the system's colour scheme, Qt 6's
``QStyleHints.colorScheme``, and followed when it changes), one style sheet written against the
palette's roles (so it is the same sheet in both), and icons from one maintained set (Material
Design Icons through ``qtawesome``), tinted with the palette's text colour. The rules it keeps are
in docs/WINDOW.md ("Design").

``apply(app)`` is called once by the app (and by the screenshot script, which may force a scheme);
widgets ask for an icon with ``set_icon(button, name)`` and get it again, re-tinted, when the scheme
changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import qtawesome
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QStyleFactory

ICON_PROPERTY = "paddockIcon"  # the icon's name, kept on the widget so a new scheme can re-tint it
ICON_ROLE_PROPERTY = "paddockIconRole"  # "text" (default), "accent-text" (on an accent button), a colour name


@dataclass(frozen=True)
class Colours:
    window: str  # the page behind everything
    surface: str  # cards, lists, fields (the palette's Base)
    raised: str  # the person's own messages, headers (AlternateBase)
    text: str
    muted: str  # secondary text: titles of side panels, timings, notes (PlaceholderText)
    border: str  # hairlines (Mid)
    accent: str  # the one action per view, selection, links (Highlight)
    on_accent: str
    danger: str
    success: str


LIGHT = Colours(
    window="#f4f5f7", surface="#ffffff", raised="#e9eef6", text="#1d2128", muted="#5d6673", border="#d5d9e0",
    accent="#2f62d9", on_accent="#ffffff", danger="#c62828", success="#2e7d32",
)  # fmt: skip
DARK = Colours(
    window="#1c1e22", surface="#25282d", raised="#2f3540", text="#e7e9ec", muted="#a0a8b4", border="#3c424b",
    accent="#6d9eff", on_accent="#0d1424", danger="#ff8a80", success="#81c784",
)  # fmt: skip


def colours(scheme: Qt.ColorScheme | None = None) -> Colours:
    scheme = QGuiApplication.styleHints().colorScheme() if scheme is None else scheme
    return DARK if scheme == Qt.ColorScheme.Dark else LIGHT


def palette(c: Colours) -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: c.window, QPalette.ColorRole.WindowText: c.text,
        QPalette.ColorRole.Base: c.surface, QPalette.ColorRole.AlternateBase: c.raised,
        QPalette.ColorRole.Text: c.text, QPalette.ColorRole.Button: c.surface,
        QPalette.ColorRole.ButtonText: c.text, QPalette.ColorRole.Highlight: c.accent,
        QPalette.ColorRole.HighlightedText: c.on_accent, QPalette.ColorRole.Link: c.accent,
        QPalette.ColorRole.LinkVisited: c.accent, QPalette.ColorRole.PlaceholderText: c.muted,
        QPalette.ColorRole.ToolTipBase: c.surface, QPalette.ColorRole.ToolTipText: c.text,
        QPalette.ColorRole.Mid: c.border, QPalette.ColorRole.Midlight: c.border,
        QPalette.ColorRole.Light: c.surface, QPalette.ColorRole.Dark: c.border,
        QPalette.ColorRole.BrightText: c.danger,
    }  # fmt: skip
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(c.muted))
    return p


# One sheet for both schemes: every colour is a palette role, except the two status colours, given
# per scheme. Object names are the widgets' own (they are also what tests find them by).
SHEET = """
QWidget#historySidebar, QFrame#activityPanel { background: palette(window); }
QLabel#historyTitle, QLabel#runningTitle, QLabel#filesTitle, QLabel#previewsTitle, QLabel#picturesTitle,
QLabel#sectionTitle { color: palette(placeholder-text); font-weight: 600; padding: 10px 2px 4px 2px; }
QLabel#runningIdle, QLabel#sandboxStatus, QLabel#toolElapsed, QLabel#note, QLabel#summaryCounts,
QLabel#hint { color: palette(placeholder-text); }
QLabel#runningIdle { padding: 0 6px; }
QLabel#folderLabel { font-weight: 700; padding: 2px 0; }
QLabel#userMessage { background: palette(alternate-base); border-radius: 12px; padding: 10px 14px; }
QFrame#toolCard, QFrame#questionCard, QFrame#trustBox, QFrame#problemBar, QFrame#keyBox {
  background: palette(base); border: 1px solid palette(mid); border-radius: 10px; }
QFrame#problemBar { border: 1px solid %(danger)s; margin: 8px 12px 0 12px; }
QLabel#toolSummary { font-weight: 600; }
QLabel#toolPurposeDetail { color: palette(placeholder-text); }
QLabel#toolTail { color: palette(placeholder-text); font-family: monospace; }
QLabel#noteError, QLabel#folderError { color: %(danger)s; }
QLabel#riskWarning { color: %(danger)s; }
QWidget#transcript { background: palette(window); }
QScrollArea { border: none; background: palette(window); }
QPushButton { background: palette(base); border: 1px solid palette(mid); border-radius: 8px; padding: 6px 14px;
  min-height: 20px; }
QPushButton:hover { border-color: palette(highlight); }
QPushButton:focus { border: 2px solid palette(highlight); padding: 5px 13px; }
QPushButton:disabled { color: palette(placeholder-text); background: palette(window); }
QPushButton:checked { background: palette(alternate-base); }
QPushButton#sendButton, QPushButton#continueButton, QPushButton#chooseFolder, QPushButton#trustYes,
QPushButton#summaryDone, QPushButton#questionYes, QPushButton#saveKey, QPushButton#supportBundle {
  background: palette(highlight); color: palette(highlighted-text); border: 1px solid palette(highlight);
  font-weight: 600; }
QPushButton#sendButton:disabled, QPushButton#continueButton:disabled {
  background: palette(mid); border-color: palette(mid); color: palette(base); }
QPushButton#toolToggle, QPushButton#undoTurn { border: none; background: transparent; color: palette(highlight);
  padding: 4px 8px; }
QLineEdit, QComboBox, QPlainTextEdit, QTextEdit#diffView {
  background: palette(base); border: 1px solid palette(mid); border-radius: 8px; padding: 7px 10px;
  selection-background-color: palette(highlight); selection-color: palette(highlighted-text); }
QLineEdit:focus, QComboBox:focus, QPlainTextEdit:focus { border: 2px solid palette(highlight); padding: 6px 9px; }
QLineEdit#messageEdit { padding: 10px 12px; }
QLineEdit#messageEdit:focus { padding: 9px 11px; }
QListWidget, QTableWidget, QTreeWidget { background: palette(base); border: 1px solid palette(mid);
  border-radius: 8px; padding: 4px; outline: none; }
QListWidget::item { padding: 6px 6px; border-radius: 6px; }
QListWidget#historyList, QListWidget#runningList, QListWidget#filesList, QListWidget#previewList {
  background: transparent; border: none; padding: 0; }
QListWidget::item:selected, QTableWidget::item:selected { background: palette(alternate-base); color: palette(text); }
QTableWidget { gridline-color: palette(mid); }
QHeaderView::section { background: palette(window); color: palette(placeholder-text); border: none;
  border-bottom: 1px solid palette(mid); padding: 6px 8px; font-weight: 600; }
QTabWidget::pane { border: 1px solid palette(mid); border-radius: 8px; top: -1px; background: palette(base); }
QTabBar::tab { padding: 8px 16px; border: none; color: palette(placeholder-text); }
QTabBar::tab:selected { color: palette(text); border-bottom: 2px solid palette(highlight); font-weight: 600; }
QProgressBar { border: none; background: palette(mid); border-radius: 3px; max-height: 6px; }
QProgressBar::chunk { background: palette(highlight); border-radius: 3px; }
QScrollBar:vertical { background: transparent; width: 10px; margin: 2px; }
QScrollBar:horizontal { background: transparent; height: 10px; margin: 2px; }
QScrollBar::handle:vertical { background: palette(mid); border-radius: 3px; min-height: 28px; }
QScrollBar::handle:horizontal { background: palette(mid); border-radius: 3px; min-width: 28px; }
QScrollBar::handle:hover { background: palette(placeholder-text); }
QScrollBar::add-line, QScrollBar::sub-line { width: 0; height: 0; border: none; background: none; }
QScrollBar::add-page, QScrollBar::sub-page { background: none; }
QDialogButtonBox { dialogbuttonbox-buttons-have-icons: 0; }
QToolTip { background: palette(base); color: palette(text); border: 1px solid palette(mid); padding: 4px; }
"""


def sheet(c: Colours) -> str:
    return SHEET % {"danger": c.danger, "success": c.success}


def icon(name: str, role: str = "text") -> QIcon:
    """An icon of the set, tinted for the scheme in use."""
    c = colours(current())
    tint = {"text": c.text, "accent-text": c.on_accent, "accent": c.accent, "muted": c.muted,
            "danger": c.danger, "success": c.success}.get(role, c.text)  # fmt: skip
    made: QIcon = qtawesome.icon(name, color=tint, color_disabled=c.muted)
    return made


def set_icon(widget: QAbstractButton | QLabel, name: str, role: str = "text", size: int = 18) -> None:
    """Give ``widget`` an icon of the set (a label gets its picture); kept to re-tint it later."""
    widget.setProperty(ICON_PROPERTY, name)
    widget.setProperty(ICON_ROLE_PROPERTY, role)
    _draw_icon(widget, size)


def _draw_icon(widget: QAbstractButton | QLabel, size: int = 18) -> None:
    name, role = widget.property(ICON_PROPERTY), widget.property(ICON_ROLE_PROPERTY) or "text"
    if not name:
        return
    picture = icon(str(name), str(role))
    if isinstance(widget, QLabel):
        widget.setPixmap(picture.pixmap(size, size))
    else:
        widget.setIcon(picture)


# Which icon each button carries, by the button's object name (buttons not named here have none).
ICONS: dict[str, tuple[str, str]] = {
    "sendButton": ("mdi6.send", "accent-text"), "stopButton": ("mdi6.stop-circle-outline", "text"),
    "chatSettings": ("mdi6.cog-outline", "text"), "settingsButton": ("mdi6.cog-outline", "text"),
    "chatNotes": ("mdi6.note-text-outline", "text"), "notesButton": ("mdi6.note-text-outline", "text"),
    "chatSchedules": ("mdi6.calendar-clock", "text"), "schedulesButton": ("mdi6.calendar-clock", "text"),
    "finishButton": ("mdi6.flag-checkered", "text"), "newConversation": ("mdi6.plus", "text"),
    "chooseFolder": ("mdi6.folder-open-outline", "accent-text"), "continueButton": ("mdi6.arrow-right", "accent-text"),
    "recheckButton": ("mdi6.refresh", "text"), "restartButton": ("mdi6.restart", "text"),
    "copyDetails": ("mdi6.content-copy", "text"), "dismissProblem": ("mdi6.close", "text"),
    "openFile": ("mdi6.open-in-new", "text"), "restoreFile": ("mdi6.file-restore-outline", "text"),
    "undoSession": ("mdi6.undo-variant", "text"), "undoTurn": ("mdi6.undo", "accent"),
    "revertButton": ("mdi6.undo", "text"), "summaryDone": ("mdi6.check", "accent-text"),
    "trustYes": ("mdi6.shield-check-outline", "accent-text"), "trustNo": ("mdi6.shield-off-outline", "text"),
    "questionYes": ("mdi6.check", "accent-text"), "questionNo": ("mdi6.close", "text"),
    "saveKey": ("mdi6.key-outline", "accent-text"), "deleteNote": ("mdi6.delete-outline", "text"),
    "scheduleAdd": ("mdi6.plus", "text"), "scheduleRemove": ("mdi6.delete-outline", "text"),
    "scheduleRunNow": ("mdi6.play", "text"), "scheduleRefresh": ("mdi6.refresh", "text"),
    "toolToggle": ("mdi6.chevron-down", "accent"), "supportBundle": ("mdi6.lifebuoy", "accent-text"),
    "exportAudit": ("mdi6.export-variant", "text"), "replaceKey": ("mdi6.key-change", "text"),
    "removeKey": ("mdi6.key-remove", "text"), "revokeTokens": ("mdi6.lan-disconnect", "text"),
}  # fmt: skip


def button_icon(button: QAbstractButton) -> None:
    """The icon ``ICONS`` names for this button, if any."""
    chosen = ICONS.get(button.objectName())
    if chosen is not None:
        set_icon(button, *chosen)


_scheme: Qt.ColorScheme | None = None  # a scheme forced by apply(), else the system's


def apply(app: QApplication, scheme: Qt.ColorScheme | None = None) -> Qt.ColorScheme:
    """Give ``app`` the look for ``scheme`` (None: the system's, followed when it changes)."""
    global _scheme
    _scheme = scheme
    chosen = QGuiApplication.styleHints().colorScheme() if scheme is None else scheme
    c = colours(chosen)
    style = QStyleFactory.create("Fusion")  # the style that draws a palette faithfully everywhere
    if style is not None:
        app.setStyle(style)
    app.setPalette(palette(c))
    app.setStyleSheet(sheet(c))
    for widget in app.allWidgets():
        if isinstance(widget, QAbstractButton | QLabel) and widget.property(ICON_PROPERTY):
            _draw_icon(widget)
    if not app.property("paddockFollowsScheme"):
        app.setProperty("paddockFollowsScheme", True)
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _s: _scheme is None and apply(app))
    return chosen


def current() -> Qt.ColorScheme:
    return QGuiApplication.styleHints().colorScheme() if _scheme is None else _scheme
