"""A self-contained HTML page of figures and tables: what ``report.html`` is made of.

The figures are `plotly <https://plotly.com/python/>`_ figures. plotly was chosen over
Vega-Altair because one Python call embeds its whole JavaScript bundle in the page (the page
opens from a file with no network), because it draws scatter plots as SVG (``scatter``, not
the WebGL ``scattergl``: a test can count the drawn points, and a page prints as vectors),
and because its hover labels take free text per point (a frontier model's config summary,
costs and predicted quality) with no hand-written JavaScript. The bundle is in the page once,
however many figures it holds.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #eee; padding: 0.2em 0.6em; text-align: right; vertical-align: top; }
th { background: #f6f6f6; } td.l, th.l { text-align: left; }
td, th { white-space: nowrap; } td.l { white-space: normal; }
code, pre { font-size: 0.9em; background: #f6f6f6; } pre { padding: 0.5em; overflow-x: auto; }
p.note { color: #555; font-size: 0.9em; } p.warn { color: #a60; }
.figure { margin: 0.5em 0; }
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class Table:
    """An HTML table: ``header`` and rows of cells (already formatted text); ``left`` names
    the columns aligned left (text, not figures)."""

    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    left: Sequence[str] = ()
    code: Sequence[str] = ()  # columns shown as code (commands, file names)

    def html(self) -> str:
        def cell(tag: str, name: str, value: Any) -> str:
            cls = ' class="l"' if name in self.left or name in self.code else ""
            text = f"<code>{esc(value)}</code>" if name in self.code and value else esc(value)
            return f"<{tag}{cls}>{text}</{tag}>"

        head = "".join(cell("th", h, h) for h in self.header)
        body = "\n".join(
            "<tr>" + "".join(cell("td", h, v) for h, v in zip(self.header, row, strict=True)) + "</tr>"
            for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


@dataclass
class Page:
    """Sections of headings, paragraphs, tables and plotly figures, rendered as one HTML
    document with plotly's JavaScript inline (once)."""

    title: str
    parts: list[str] = field(default_factory=list)
    figures: int = 0

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{esc(text)}</h2>")

    def para(self, text: str, cls: str = "") -> None:
        self.parts.append(f'<p class="{cls}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>")

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{esc(text)}</pre>")

    def table(self, table: Table) -> None:
        self.parts.append(table.html())

    def figure(self, fig: Any) -> None:
        """A plotly figure, drawn when the page loads (the bundle is in the page's head)."""
        import plotly.io as pio

        self.figures += 1
        div = pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            div_id=f"figure{self.figures}",
            config={"displaylogo": False, "responsive": True},
        )
        self.parts.append(f'<div class="figure">{div}</div>')

    def render(self) -> str:
        from plotly.offline import get_plotlyjs

        script = f'<script type="text/javascript">{get_plotlyjs()}</script>' if self.figures else ""
        body = "\n".join(self.parts)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(self.title)}</title><style>{STYLE}</style>{script}</head>\n"
            f"<body><h1>{esc(self.title)}</h1>\n{body}\n</body></html>\n"
        )


def plotly_available() -> bool:
    try:
        import plotly  # noqa: F401
    except ImportError:
        return False
    return True
