"""What a search space may add to the HTML report (`SearchSpace.report_panel`): data, never markup.

A panel is a title, paragraphs of text and plots given as numbers (`Plot`, `Series`); the report
draws the plots and escapes every text. So a space's panel shows what it wants (e.g. a fitted curve
against the data) and can inject no HTML or script into the page.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from evolve.svg_plots import Plot, Series

__all__ = ["Panel", "Plot", "Series"]


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    text: Sequence[str] = ()  # paragraphs, shown as plain text
    plots: Sequence[Plot] = ()
