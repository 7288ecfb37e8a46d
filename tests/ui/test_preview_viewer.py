"""The large preview: every page of a file, one under the other, zoomable; the fallback's note in
plain words. Offscreen Qt (pytest-qt); the pictures are made here on the host (the VM tests make
them in the guest: ``tests/office/test_real_previews.py``)."""

from __future__ import annotations

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from paddock.desk.previews import FALLBACK, Preview
from paddock.ui.previews import PageViewer, PreviewList


def _png(width: int, height: int, colour: str) -> bytes:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor(colour))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def _pages(n: int) -> Preview:
    pngs = [_png(800, 1100, c) for c in ("white", "lightgrey", "lightblue")[:n]]
    return Preview("report.docx", pngs[0], 800, 1100, tuple(pngs[1:]))


def test_a_click_opens_every_page_large(qtbot: QtBot) -> None:
    pictures = PreviewList("previewList", "Pictures of the files the assistant made")
    qtbot.addWidget(pictures)
    pictures.add_previews([_pages(3)])
    pictures.show()
    [item] = pictures.findItems("report.docx", Qt.MatchFlag.MatchExactly)
    assert "3\xa0pages" in item.toolTip()  # plain_tip keeps each line whole
    pictures.itemClicked.emit(item)
    viewer = pictures.large
    assert isinstance(viewer, PageViewer) and viewer.isVisible()
    assert len(viewer.labels) == 3  # page by page
    assert [label.accessibleName() for label in viewer.labels][-1] == "Page 3 of 3 of report.docx"
    assert viewer.windowTitle() == "report.docx — 3 pages"
    assert not viewer.note.isVisible()
    viewer.close()


def test_the_viewer_zooms_and_fits_the_width(qtbot: QtBot) -> None:
    host = _host(qtbot)
    viewer = PageViewer(host, _pages(2))
    viewer.show()
    viewer.set_zoom(1.0)
    assert viewer.labels[0].pixmap().width() == 800 and viewer.zoom_label.text() == "100 %"
    qtbot.mouseClick(viewer.zoom_in, Qt.MouseButton.LeftButton)
    assert viewer.zoom > 1.0 and viewer.labels[1].pixmap().width() > 800
    for _ in range(20):
        viewer.step(-1)
    assert viewer.labels[0].pixmap().width() == 200 and not viewer.zoom_out.isEnabled()  # 25 %, the least
    viewer.resize(500, 700)
    qtbot.mouseClick(viewer.fit, Qt.MouseButton.LeftButton)
    assert viewer.labels[0].pixmap().width() <= 500 - 40  # a whole page's width in the window


def test_the_fallback_says_it_is_not_the_layout(qtbot: QtBot) -> None:
    page = _png(500, 640, "white")
    host = _host(qtbot)
    viewer = PageViewer(host, Preview("report.docx", page, 500, 640, note=FALLBACK))
    viewer.show()
    assert viewer.note.isVisible() and viewer.note.text() == FALLBACK
    assert "not installed" in FALLBACK and "sandbox" in FALLBACK


def _host(qtbot: QtBot) -> PreviewList:
    host = PreviewList("previewList", "Pictures")
    qtbot.addWidget(host)
    return host
