"""A failed attempt's reply, continued by the next: what the listener already heard is not repeated."""

from __future__ import annotations


class Dedupe:
    """Drops a repeat of already-delivered text when a fallback model starts its reply over."""

    def __init__(self, delivered: str):
        self._delivered = delivered
        self._pending = ""
        self._decided = not delivered

    def feed(self, text: str) -> str:
        """The part of the new attempt's ``text`` the listener has not heard yet."""
        if self._decided:
            return text
        self._pending += text
        if len(self._pending) < len(self._delivered) and self._delivered.startswith(self._pending):
            return ""  # could still be a repeat: hold it
        return self._decide()

    def flush(self) -> str:
        """At the attempt's end: whatever was held and is new."""
        return "" if self._decided else self._decide()

    def _decide(self) -> str:
        self._decided = True
        pending, self._pending = self._pending, ""
        if pending.startswith(self._delivered):
            return pending[len(self._delivered):]
        if self._delivered.startswith(pending):
            return ""
        return pending
