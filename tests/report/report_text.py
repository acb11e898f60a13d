"""Reading a report as a person would: its visible text, and the words that must never appear in it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Words that mean a missing value leaked into the page.
LEAKED_MISSING = re.compile(r"\b(None|nan|NaN|NaT|null|undefined)\b")


class _TextOnly(HTMLParser):
    """Collects the text a reader sees: everything but <script> and <style> contents."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    return " ".join(parser.parts)
