"""Pictures of the files the assistant made, drawn in the sandbox (``paddock.desk.Preview``,
already checked: a PNG of bounded size): small beside the conversation and in the summary, large
when chosen. The file names come from the guest: escaped, and plain text wherever they go."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QListWidget, QListWidgetItem, QVBoxLayout

from paddock.core.text import shown
from paddock.desk import Preview
from paddock.ui.tips import plain_tip

THUMB = 88


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
        self.thumb = thumb
        self.pictures: dict[str, QPixmap] = {}
        self.large: QDialog | None = None

    def add_previews(self, previews: list[Preview] | tuple[Preview, ...]) -> None:
        """Newest first; a file drawn again replaces its older picture."""
        for p in previews:
            pixmap = QPixmap()
            if not pixmap.loadFromData(p.png, "PNG"):
                continue
            self.pictures[p.path] = pixmap
            for row in reversed(range(self.count())):
                if self.item(row).data(Qt.ItemDataRole.UserRole) == p.path:
                    self.takeItem(row)
            small = pixmap.scaled(
                self.thumb, self.thumb, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            name = shown(p.path)
            item = QListWidgetItem(QIcon(small), name)
            item.setData(Qt.ItemDataRole.UserRole, p.path)
            item.setToolTip(plain_tip(f"{name}: a picture drawn in the sandbox"))
            self.insertItem(0, item)

    def clear_pictures(self) -> None:
        self.clear()
        self.pictures.clear()

    def _show_large(self, item: QListWidgetItem) -> None:
        pixmap = self.pictures.get(item.data(Qt.ItemDataRole.UserRole))
        if pixmap is None:
            return
        self.large = QDialog(self)
        self.large.setObjectName("previewDialog")
        self.large.setWindowTitle(item.text())
        picture = QLabel()
        picture.setAccessibleName(f"A picture of {item.text()}")
        picture.setPixmap(pixmap)
        QVBoxLayout(self.large).addWidget(picture)
        self.large.show()
