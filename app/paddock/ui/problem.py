"""The bar over every page that says an unexpected problem happened, what to do, and offers its
technical details to copy for support (never shown in the window itself)."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout

from paddock.desk import Problem
from paddock.ui.pages import _button, _label


class ProblemBar(QFrame):
    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("problemBar")
        self.setAccessibleName("Problem")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(self)
        self.text = _label("", "problemText")
        self.text.setAccessibleName("What went wrong")
        row.addWidget(self.text, 1)
        self.copy_button = _button("Copy details", "copyDetails", self.copy)
        self.copy_button.setToolTip("Copy the technical details, to send to whoever looks after Paddock for you")
        row.addWidget(self.copy_button)
        row.addWidget(_button("Dismiss", "dismissProblem", self.hide))
        self.details = ""
        self.hide()

    def show_problem(self, problem: Problem) -> None:
        self.text.setText(problem.message)
        self.details = problem.details
        self.copy_button.setText("Copy details")
        self.copy_button.setVisible(bool(problem.details))
        self.show()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(f"{self.text.text()}\n\n{self.details}")
        self.copy_button.setText("Copied")
