"""The pieces every report page is made of: escaped text, embedded figures, tolerant JSON reads."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path


def figure(png: bytes, alt: str, element_id: str, caption: str) -> str:
    """A <figure> with the PNG embedded (the page needs no other file) and its caption."""
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure id='{e(element_id)}'><img alt='{e(alt)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{e(caption)}</figcaption></figure>")


def read_json(path: Path) -> dict | None:
    """A JSON file's object, or None when it is missing or unreadable (a report never fails on one)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def e(text) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)
