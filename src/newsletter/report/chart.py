"""The opens-and-clicks-per-hour chart, drawn by matplotlib as inline SVG."""

from __future__ import annotations

import io


def hourly_svg(opens: list[int], clicks: list[int]) -> str:
    """A bar chart of the first hours after sending, as an <svg> element (text kept as text)."""
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend
    from matplotlib.ticker import MaxNLocator

    # A fixed hash salt and no date: the same numbers give the same page, byte for byte.
    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "newsletter-report", "font.size": 9}
    ):
        figure = Figure(figsize=(7.2, 2.6), dpi=100)
        axes = figure.add_subplot()
        hours = range(len(opens))
        axes.bar([h - 0.22 for h in hours], opens, width=0.44, color="#60a5fa", label="opens")
        axes.bar([h + 0.22 for h in hours], clicks, width=0.44, color="#0b4f8a", label="clicks")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylim(bottom=0, top=max([*opens, *clicks, 1]) * 1.1)
        axes.set_xlim(-0.5, len(opens) - 0.5)
        axes.set_xticks(list(range(0, len(opens) + 1, 6)))
        axes.set_xlabel("hours after the issue went out")
        axes.set_ylabel("events")
        axes.spines[["top", "right"]].set_visible(False)
        axes.legend(frameon=False, loc="upper right")
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
