"""``rag-explorer report --html FILE``: one self-contained HTML file (charts as inline PNG images drawn
with matplotlib's Agg backend, offline; no script, no external resource) with the same numbers as
``--json``. Every value from the data is HTML-escaped; only http(s) URLs become links."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

from shared.extras import needs_extra

if TYPE_CHECKING:
    from shared.analytics import DeflectionReport, Stats

COLORS = {"deflected": "#2e7d32", "answered": "#90caf9", "refused": "#ef9a9a", "line": "#1b1b1b"}
CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1b1b1b;padding:0 1rem}h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;font-size:1.2rem}
.muted{color:#555}.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}.card{border:1px solid #ddd;
border-radius:8px;padding:.8rem 1rem;min-width:150px}.card b{display:block;font-size:1.6rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #e3e3e3;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto}ol{margin:.2rem 0;padding-left:1.2rem}
"""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _link(page: str, title: str | None = None) -> str:
    label = _e(title or page)
    if page.startswith(("https://", "http://")):
        return f'<a href="{_e(page)}">{label}</a>' + (
            f' <span class="muted">{_e(page)}</span>' if title else ""
        )
    return f"{label} <span class='muted'>{_e(page)}</span>" if title else label


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _charts(report: DeflectionReport) -> dict[str, str]:
    with needs_extra("report", "the HTML report's charts"):
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

    charts: dict[str, str] = {}
    t = report.summary.totals
    fig, ax = plt.subplots(figsize=(8, 2.6))
    stages = [
        ("Questions", t.questions),
        ("Answered", t.answered),
        ("Not rated down", t.not_rated_down),
        ("Deflected", t.deflected),
    ]
    bars = ax.barh(
        [s for s, _ in reversed(stages)],
        [n for _, n in reversed(stages)],
        color=[COLORS["deflected"], "#66bb6a", COLORS["answered"], "#b0bec5"],
    )
    for bar, (_, n) in zip(bars, reversed(stages), strict=True):
        share = f" ({n / t.questions:.0%})" if t.questions else ""
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {n:,}{share}", va="center")
    ax.set_title("Deflection funnel")
    ax.spines[["top", "right"]].set_visible(False)
    charts["funnel"] = _png(fig)
    plt.close(fig)

    days = report.summary.by_day
    if days:
        fig, ax = plt.subplots(figsize=(9, 3.4))
        labels = [d.day[5:] for d in days]
        deflected = [d.deflected for d in days]
        answered_only = [d.answered - d.deflected for d in days]
        refused = [d.questions - d.answered for d in days]
        ax.bar(labels, deflected, color=COLORS["deflected"], label="deflected")
        ax.bar(
            labels, answered_only, bottom=deflected, color=COLORS["answered"], label="answered, not deflected"
        )
        ax.bar(
            labels,
            refused,
            bottom=[a + b for a, b in zip(deflected, answered_only, strict=True)],
            color=COLORS["refused"],
            label="refused",
        )
        ax.set_ylabel("questions")
        ax.spines[["top"]].set_visible(False)
        rate = ax.twinx()
        rate.plot(
            labels,
            [(d.deflection_rate or 0) * 100 for d in days],
            color=COLORS["line"],
            marker="o",
            label="deflection rate",
        )
        rate.set_ylim(0, 100)
        rate.set_ylabel("deflection rate (%)")
        handles = ax.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, ncols=4)
        ax.set_title("Questions per day and deflection rate")
        charts["days"] = _png(fig)
        plt.close(fig)

    clusters = report.gaps.clusters[:10]
    if clusters:
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(clusters) + 1))
        names = [c.questions[0][:70] + ("…" if len(c.questions[0]) > 70 else "") for c in clusters]
        ax.barh(list(reversed(names)), [c.size for c in reversed(clusters)], color="#ffb74d")
        ax.set_xlabel("questions")
        ax.set_title("Coverage gaps: what customers ask that the docs do not answer")
        ax.spines[["top", "right"]].set_visible(False)
        charts["gaps"] = _png(fig)
        plt.close(fig)
    return charts


def _stats_row(label: str, s: Stats) -> str:
    cells = [s.questions, s.answered, s.deflected]
    rates = [_pct(s.answer_rate), _pct(s.deflection_rate), _pct(s.helpful_share)]
    return (
        f"<tr><td>{_e(label)}</td>"
        + "".join(f'<td class="n">{c:,}</td>' for c in cells)
        + "".join(f'<td class="n">{r}</td>' for r in rates)
        + f'<td class="n">{s.handoffs:,}</td><td class="n">{_ms(s.latency_p50_ms)}</td>'
        f'<td class="n">{_ms(s.latency_p95_ms)}</td></tr>'
    )


STATS_HEAD = (
    "<tr><th>{}</th><th>questions</th><th>answered</th><th>deflected</th><th>answer rate</th>"
    "<th>deflection rate</th><th>helpful</th><th>handoffs</th><th>p50</th><th>p95</th></tr>"
)


def render(report: DeflectionReport) -> str:
    """The whole HTML document."""
    s, g = report.summary, report.gaps
    t = s.totals
    charts = _charts(report)
    img = {
        k: f'<img alt="{_e(alt)}" src="{v}">'
        for (k, v), alt in zip(
            charts.items(),
            ("Deflection funnel", "Questions per day and deflection rate", "Coverage gaps by size"),
            strict=False,
        )
    }
    cards = "".join(
        f'<div class="card"><b>{v}</b>{_e(k)}</div>'
        for k, v in [
            ("questions", f"{t.questions:,}"),
            ("deflection rate", _pct(t.deflection_rate)),
            ("answer rate", _pct(t.answer_rate)),
            ("rated helpful", _pct(t.helpful_share)),
            ("handoffs", f"{t.handoffs:,}"),
            ("latency p95", _ms(t.latency_p95_ms)),
        ]
    )
    gap_rows = "".join(
        f'<tr><td class="n">{c.size}</td><td class="n">{c.refused}</td><td class="n">{c.rated_down}</td>'
        f"<td><ol>{''.join(f'<li>{_e(q)}</li>' for q in c.questions)}</ol></td>"
        f"<td>{'<br>'.join(_link(p.page, p.title) for p in c.closest_pages) or '–'}</td></tr>"
        for c in g.clusters
    )
    weak_rows = "".join(
        f'<tr><td>{_link(w.page, w.title)}</td><td class="n">{w.rated_down}</td>'
        f'<td class="n">{w.cited}</td></tr>'
        for w in s.weak_pages
    )
    collection_rows = "".join(_stats_row(c.collection, c) for c in s.by_collection)
    scope = f" · collection {_e(s.collection)}" if s.collection else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Deflection report {_e(s.since[:10])} – {_e(s.until[:10])}</title><style>{CSS}</style></head><body>
<h1>Deflection report</h1>
<p class="muted">{_e(s.since[:16].replace("T", " "))} – {_e(s.until[:16].replace("T", " "))} UTC{scope}</p>
<div class="cards">{cards}</div>
{img.get("funnel", "")}
<p class="muted">Questions → answered (not refused) → not rated down → deflected (no handoff to support).</p>
<h2>By day</h2>{img.get("days", "")}
<table>{STATS_HEAD.format("day")}{"".join(_stats_row(d.day, d) for d in s.by_day)}</table>
<h2>By collection</h2>
<table>{STATS_HEAD.format("collection")}{collection_rows}</table>
<h2>Coverage gaps: the docs to write next</h2>
<p class="muted">{g.considered:,} refused or rated-down questions; {g.clustered:,} distinct ones grouped by
meaning, biggest group first, with the pages that came closest.</p>
{img.get("gaps", "")}
<table><tr><th>size</th><th>refused</th><th>rated down</th><th>representative questions</th>
<th>closest pages</th></tr>{gap_rows or '<tr><td colspan="5">No gaps in this period.</td></tr>'}</table>
<h2>Weak pages</h2>
<p class="muted">Pages most often cited in answers rated "not helpful".</p>
<table><tr><th>page</th><th>rated down</th><th>cited</th></tr>
{weak_rows or '<tr><td colspan="3">No answer was rated down in this period.</td></tr>'}</table>
</body></html>
"""
