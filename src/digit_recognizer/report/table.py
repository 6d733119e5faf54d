"""A small text table: aligned columns for the terminal, or Markdown (by default the first column left, the rest
right)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False, align: str | None = None
) -> str:
    """align: "l" or "r" per column (default: "l", then "r" for every other column)."""
    align = align or "l" + "r" * (len(columns) - 1)
    if markdown:
        rules = ["---" if a == "l" else "---:" for a in align]
        return "\n".join("|" + "|".join(f" {c} " if c else " " for c in row) + "|" for row in [columns, rules, *rows])
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align, strict=True)
        ).rstrip()
        for row in [columns, *rows]
    )
