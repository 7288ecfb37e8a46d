"""The error every Paddock layer raises: a plain-words message, a hint, a cause."""

from __future__ import annotations


class PaddockError(Exception):
    """An error a person can read.

    ``message`` says what happened in plain words; ``hint`` says what to do
    about it. The underlying exception, if any, is chained as ``__cause__``
    (raise ... from exc), so logs keep the detail and users get the sentence.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  {self.hint}"
