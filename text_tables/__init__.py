"""Tables drawn with rich, and rendered as plain text: one style and one way to print for every command's
report (`monolith analyze` and `bench`, `python -m cost_model`, the demo and its bench, the evaluation).
On the ground floor, so every command imports it from below; it imports rich and nothing of the project.

Plain text because the reports are piped, logged and pasted into the README: no colour, no markup read
from cell text (a "[min–max]" cell is text), and a console wide enough that no cell ever wraps.
"""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

# A report's lines are pasted as they are: a table only as wide as its cells, never folded.
NEVER_WRAPS = 1000
# A defect's fields shown in their own columns; the others go to "details".
MAIN_FIELDS = {"type", "start_s", "end_s", "confidence"}


def text_table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()) -> Table:
    """A table of `columns`, those in `right` right-aligned (numbers). A title wraps at the table's
    width, so a title longer than the table is better printed as its own line before it."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def render_text(*parts: RenderableType, width: int = NEVER_WRAPS) -> str:
    """Tables and lines of text (printed as they are, never wrapped) as one plain-text string, without
    the spaces rich pads a line with, nor the blank edge lines above the first table and below the
    last."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False,
                      markup=False, emoji=False, highlight=False)
    for part in parts:
        console.print(part, soft_wrap=isinstance(part, str))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def defects_table(defects: list[dict[str, Any]], title: str | None = None) -> Table | str:
    """One report's defects, a row each; their other fields as key=value details."""
    if not defects:
        return "  no defects found"
    table = text_table("type", "start s", "end s", "conf", "details", title=title,
                       right=("start s", "end s", "conf"))
    for d in defects:
        details = ", ".join(f"{k}={v}" for k, v in d.items() if k not in MAIN_FIELDS)
        table.add_row(d["type"], f"{d['start_s']:.2f}", f"{d['end_s']:.2f}", f"{d['confidence']:.2f}",
                      details)
    return table
