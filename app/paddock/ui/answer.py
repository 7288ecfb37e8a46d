"""The assistant's answer, rendered from Markdown (headings, lists, tables, code) as it streams.

The answer is untrusted text (the model may repeat what a file or a web page said), so: raw HTML
in it is not rendered, no image or other resource is ever loaded (not from the disk, not from the
network), and a link opens only after a question that names the site it really goes to (in its
ASCII form, so a look-alike name shows as what it is). Only web and mail links can be opened.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QElapsedTimer, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QImage, QResizeEvent, QTextDocument
from PySide6.QtWidgets import QFrame, QMessageBox, QSizePolicy, QTextBrowser, QWidget

MARKDOWN = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML
OPENABLE = {"http", "https", "mailto"}
RENDER_EVERY_MS = 100
BLANK = QImage(1, 1, QImage.Format.Format_ARGB32)
BLANK.fill(0)


def site(url: QUrl) -> str:
    """Where a link really goes, as a person should be told it."""
    if url.scheme() == "mailto":
        return f"an email to {url.path()}"
    return url.host(QUrl.ComponentFormattingOption.FullyEncoded) or url.toString()


class SealedDocument(QTextDocument):
    """A document that loads nothing its text names: no image, no style sheet, no file. (The
    viewer's own ``loadResource`` is not enough: the stock document then reads local files.)"""

    def loadResource(self, kind: int, name: QUrl | str, /) -> Any:
        return BLANK if kind == QTextDocument.ResourceType.ImageResource.value else ""


class AnswerView(QTextBrowser):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocument(SealedDocument(self))
        self.setObjectName("assistantMessage")
        self.setAccessibleName("The assistant's answer")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self.ask_to_open)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(self.verticalScrollBarPolicy().ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.viewport().setAutoFillBackground(False)
        self.source_text = ""
        self.renders = 0
        self._shown = ""
        self._drawn = QElapsedTimer()
        self._due = QTimer(self)
        self._due.setSingleShot(True)
        self._due.timeout.connect(self.draw)
        self.link_box: QMessageBox | None = None
        self.document().contentsChanged.connect(self._fit)

    def append_text(self, delta: str) -> None:
        """Add streamed text. Rendering the whole answer per token would cost the square of its
        length, so it is drawn at once when nothing was drawn lately, else at most every
        ``RENDER_EVERY_MS`` with everything that came meanwhile."""
        self.source_text += delta
        if self._due.isActive():
            return
        waited = self._drawn.elapsed() if self._drawn.isValid() else RENDER_EVERY_MS
        if waited >= RENDER_EVERY_MS:
            self.draw()
        else:
            self._due.start(RENDER_EVERY_MS - waited)

    def draw(self) -> None:
        """Draw everything received so far (the chat calls this when the answer ends)."""
        self._due.stop()
        self._drawn.restart()
        if self.renders and self._shown == self.source_text:
            return
        self.renders += 1
        self._shown = self.source_text
        self.document().setMarkdown(self.source_text, MARKDOWN)

    def text(self) -> str:
        return self.source_text

    def _fit(self) -> None:
        self.document().setTextWidth(self.viewport().width())
        height = int(self.document().size().height()) + self.frameWidth() * 2 + 4
        self.setFixedHeight(max(height, 24))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.height())

    def ask_to_open(self, url: QUrl) -> None:
        """A link is opened only after the person said yes to the site named."""
        if url.scheme() not in OPENABLE or not url.isValid():
            box = QMessageBox(QMessageBox.Icon.Information, "Link not opened",
                              "Paddock opens only web and email links from an answer.", parent=self)  # fmt: skip
        else:
            where = site(url)
            box = QMessageBox(QMessageBox.Icon.Question, "Open a link?",
                              f"This link goes to {where}. Open it in your web browser?", parent=self)  # fmt: skip
            box.setInformativeText(url.toString(QUrl.ComponentFormattingOption.FullyEncoded)[:500])
            yes = box.addButton(f"Open {where}", QMessageBox.ButtonRole.AcceptRole)
            yes.setObjectName("openLink")
            box.addButton("Don't open", QMessageBox.ButtonRole.RejectRole).setObjectName("keepLinkClosed")
            box.accepted.connect(lambda: QDesktopServices.openUrl(url))
        box.setTextFormat(Qt.TextFormat.PlainText)  # the link is the model's: never read as HTML
        box.setObjectName("linkQuestion")
        self.link_box = box
        box.open()
