"""Pictures of the files the assistant made, drawn in the sandbox (``paddock.desk.Preview``,
already checked: PNGs of bounded size, one per page): small beside the conversation and in the
summary; chosen, a large viewer shows the document page by page and zooms. The file names come
from the guest: escaped, and plain text wherever they go."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QKeySequence, QPixmap, QShortcut, QWheelEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from paddock.core.text import shown
from paddock.desk import Preview
from paddock.ui.tips import plain_tip

THUMB = 88
ZOOMS = (0.25, 0.33, 0.5, 0.67, 0.75, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0)


def _pages(n: int) -> str:
    return "1 page" if n == 1 else f"{n} pages"


def _content(pixmap: QPixmap, probe: int = 96) -> QPixmap:
    """The part of a page that holds something (the margins' white cut off, a little kept), so a
    small picture shows the table, chart or slide rather than a blank sheet. Found on a small copy."""
    small = pixmap.toImage().scaled(probe, probe, Qt.AspectRatioMode.KeepAspectRatio)
    blank = small.pixel(0, 0)
    xs, ys = [], []
    for y in range(small.height()):
        for x in range(small.width()):
            if small.pixel(x, y) != blank:
                xs.append(x)
                ys.append(y)
    if not xs:
        return pixmap
    fx, fy = pixmap.width() / small.width(), pixmap.height() / small.height()
    left, top = max(0, int((min(xs) - 2) * fx)), max(0, int((min(ys) - 2) * fy))
    right, bottom = min(pixmap.width(), int((max(xs) + 3) * fx)), min(pixmap.height(), int((max(ys) + 3) * fy))
    return pixmap.copy(left, top, right - left, bottom - top)


class PageViewer(QDialog):
    """One file's pages, one under the other, in a scrolling column; zoom with the buttons,
    Ctrl and the wheel, or Ctrl +/-; "Fit width" fits a page to the window (the start)."""

    def __init__(self, parent: QWidget, preview: Preview) -> None:
        super().__init__(parent)
        self.setObjectName("previewDialog")
        name = shown(preview.path)
        self.setWindowTitle(f"{name} — {_pages(len(preview.pages))}")
        self.pixmaps = []
        for png in preview.pages:
            pixmap = QPixmap()
            if pixmap.loadFromData(png, "PNG"):
                self.pixmaps.append(pixmap)
        column = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.title = QLabel(f"{name} · {_pages(len(self.pixmaps))}")
        self.title.setObjectName("previewTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        bar.addWidget(self.title, 1)
        self.zoom_out = QPushButton("−")
        self.zoom_out.setAccessibleName("Zoom out")
        self.zoom_out.setToolTip(plain_tip("Smaller (Ctrl and minus)"))
        self.zoom_label = QLabel()
        self.zoom_label.setObjectName("previewZoom")
        self.zoom_in = QPushButton("+")
        self.zoom_in.setAccessibleName("Zoom in")
        self.zoom_in.setToolTip(plain_tip("Larger (Ctrl and plus)"))
        self.fit = QPushButton("Fit width")
        self.fit.setAccessibleName("Fit the page to the window's width")
        for w in (self.zoom_out, self.zoom_label, self.zoom_in, self.fit):
            bar.addWidget(w)
        column.addLayout(bar)
        self.note = QLabel(preview.note)
        self.note.setObjectName("previewNote")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setVisible(bool(preview.note))
        column.addWidget(self.note)
        self.area = QScrollArea()
        self.area.setObjectName("previewPages")
        self.area.setWidgetResizable(True)
        self.area.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        holder = QWidget()
        pages = QVBoxLayout(holder)
        pages.setSpacing(16)
        self.labels: list[QLabel] = []
        for i, _ in enumerate(self.pixmaps):
            label = QLabel()
            label.setAccessibleName(f"Page {i + 1} of {len(self.pixmaps)} of {name}")
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            pages.addWidget(label)
            self.labels.append(label)
        pages.addStretch(1)
        self.area.setWidget(holder)
        column.addWidget(self.area, 1)
        self.zoom = 1.0
        self.zoom_out.clicked.connect(lambda: self.step(-1))
        self.zoom_in.clicked.connect(lambda: self.step(+1))
        self.fit.clicked.connect(self.fit_width)
        QShortcut(QKeySequence.StandardKey.ZoomIn, self, lambda: self.step(+1))
        QShortcut(QKeySequence.StandardKey.ZoomOut, self, lambda: self.step(-1))
        screen = parent.screen().availableGeometry() if parent.screen() is not None else None
        width = min(900, screen.width() - 80) if screen is not None else 900
        height = min(1000, screen.height() - 80) if screen is not None else 1000
        self.resize(width, height)
        self.fit_width()

    def set_zoom(self, zoom: float) -> None:
        self.zoom = max(ZOOMS[0], min(ZOOMS[-1], zoom))
        for label, pixmap in zip(self.labels, self.pixmaps, strict=True):
            size = pixmap.size() * self.zoom
            label.setPixmap(
                pixmap.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
                if self.zoom != 1.0
                else pixmap
            )
        self.zoom_label.setText(f"{round(self.zoom * 100)} %")
        self.zoom_out.setEnabled(self.zoom > ZOOMS[0])
        self.zoom_in.setEnabled(self.zoom < ZOOMS[-1])

    def step(self, direction: int) -> None:
        if direction > 0:
            self.set_zoom(next((z for z in ZOOMS if z > self.zoom + 1e-6), ZOOMS[-1]))
        else:
            self.set_zoom(next((z for z in reversed(ZOOMS) if z < self.zoom - 1e-6), ZOOMS[0]))

    def fit_width(self) -> None:
        widest = max((p.width() for p in self.pixmaps), default=1)
        room = max(200, self.width() - 60)
        self.set_zoom(min(1.0, room / widest))

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.step(+1 if event.angleDelta().y() > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)


class PreviewList(QListWidget):
    def __init__(self, name: str, accessible: str, thumb: int = THUMB) -> None:
        super().__init__()
        self.setObjectName(name)
        self.setAccessibleName(accessible)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(thumb, thumb))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setGridSize(QSize(thumb + 24, thumb + 30))
        self.setMovement(QListWidget.Movement.Static)
        self.setWordWrap(True)
        self.itemActivated.connect(self._show_large)
        self.itemClicked.connect(self._show_large)
        self.thumb = thumb
        self.pictures: dict[str, QPixmap] = {}  # each file's first page
        self.previews: dict[str, Preview] = {}
        self.large: PageViewer | None = None

    def add_previews(self, previews: list[Preview] | tuple[Preview, ...]) -> None:
        """Newest first; a file drawn again replaces its older picture."""
        for p in previews:
            pixmap = QPixmap()
            if not pixmap.loadFromData(p.png, "PNG"):
                continue
            self.pictures[p.path] = pixmap
            self.previews[p.path] = p
            for row in reversed(range(self.count())):
                if self.item(row).data(Qt.ItemDataRole.UserRole) == p.path:
                    self.takeItem(row)
            small = _content(pixmap).scaled(
                self.thumb, self.thumb, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            name = shown(p.path)
            item = QListWidgetItem(QIcon(small), name)
            item.setData(Qt.ItemDataRole.UserRole, p.path)
            how = "a simple drawing of its words" if p.note else f"{_pages(len(p.pages))} as the document looks"
            item.setToolTip(plain_tip(f"{name}: {how}. Click to see it large."))
            self.insertItem(0, item)

    def clear_pictures(self) -> None:
        self.clear()
        self.pictures.clear()
        self.previews.clear()

    def _show_large(self, item: QListWidgetItem) -> None:
        preview = self.previews.get(item.data(Qt.ItemDataRole.UserRole))
        if preview is None:
            return
        if self.large is not None:
            self.large.close()
        self.large = PageViewer(self, preview)
        self.large.show()
        self._beside(self.large)

    def _beside(self, viewer: QDialog) -> None:
        """Beside the window when the screen has room for both (the conversation stays in view)."""
        window, screen = self.window(), self.screen()
        if screen is None or window is self:
            return
        room, frame = screen.availableGeometry(), window.frameGeometry()
        if frame.right() + viewer.width() <= room.right():
            viewer.move(frame.right() + 1, max(room.top(), frame.top()))
