"""`rag-explorer report`: what was deflected, what was not, and which docs to write next."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from local_cli.output import UserError, echo, plural
from local_cli.state import State, emit, json_option, user_errors

if TYPE_CHECKING:
    from shared.analytics import DeflectionReport


def _local(state: State, since: str, until: str | None, collection: str | None) -> DeflectionReport:
    from shared.adapters.support import interaction_store
    from shared.analytics import DeflectionReport
    from shared.models import SearchFilter, SearchHit
    from shared.support import SupportDesk

    service = state.service()
    settings = service.settings
    if not settings.interactions_table and not settings.interactions_path.exists():
        echo(f"no interactions recorded yet in {settings.home_path}", err=True)
    # where `ask` and the API record them (shared.adapters.support): the table if one is set, else SQLite
    desk = SupportDesk(settings, interaction_store(settings))
    echo("reading interactions ...", err=True)
    summary = desk.summary(since=since, until=until, collection=collection)

    def search(text: str) -> list[SearchHit]:
        return service.search(text, k=3, filters=SearchFilter(collection=collection)).hits

    echo("grouping the unanswered questions by meaning ...", err=True)
    gaps = desk.gaps(
        embedder=service.embedder, search=search, since=since, until=until, collection=collection
    )
    return DeflectionReport(summary=summary, gaps=gaps)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def print_report(report: DeflectionReport) -> None:
    s, g = report.summary, report.gaps
    t = s.totals
    echo(
        f"Deflection report {s.since[:16]} - {s.until[:16]} UTC"
        + (f", collection {s.collection}" if s.collection else "")
    )
    echo(
        f"  {plural(t.questions, 'question')} -> {t.answered} answered -> {t.not_rated_down} not rated down "
        f"-> {t.deflected} deflected ({_pct(t.deflection_rate)})"
    )
    echo(
        f"  answer rate {_pct(t.answer_rate)}, rated helpful {_pct(t.helpful_share)} of {t.rated}, "
        f"{plural(t.handoffs, 'handoff')}, latency p50 {t.latency_p50_ms or 0:.0f} ms"
        f" / p95 {t.latency_p95_ms or 0:.0f} ms"
    )
    if s.by_day:
        echo("\nBy day:   questions  answered  deflected  rate")
        for d in s.by_day:
            echo(f"  {d.day}  {d.questions:9}  {d.answered:8}  {d.deflected:9}  {_pct(d.deflection_rate):>4}")
    if len(s.by_collection) > 1:
        echo("\nBy collection:")
        for col in s.by_collection:
            rate = _pct(col.deflection_rate)
            echo(f"  {col.collection}: {plural(col.questions, 'question')}, deflection {rate}")
    echo(f"\nCoverage gaps ({plural(g.considered, 'refused or rated-down question')}):")
    if not g.clusters:
        echo("  none in this period")
    for n, c in enumerate(g.clusters[:10], 1):
        echo(f"  {n}. {plural(c.size, 'question')} ({c.refused} refused, {c.rated_down} rated down)")
        for q in c.questions:
            echo(f"       - {q}")
        if c.closest_pages:
            best = c.closest_pages[0]
            echo(
                f"       closest page: {best.title or best.page}" + (f" <{best.page}>" if best.title else "")
            )
    if s.weak_pages:
        echo("\nWeak pages (cited in answers rated down):")
        for w in s.weak_pages:
            echo(f"  {w.rated_down}/{w.cited}  {w.title or w.page}" + (f" <{w.page}>" if w.title else ""))


@click.command()
@click.option(
    "--since",
    default="7d",
    show_default=True,
    envvar="RAG_EXPLORER_REPORT_SINCE",
    help="Start of the period: 7d, 24h, 2w, or a date such as 2026-11-01 (UTC). "
    "[env RAG_EXPLORER_REPORT_SINCE]",
)
@click.option("--until", help="End of the period (default: now); same forms as --since.")
@click.option("--collection", help="Only this collection.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write a self-contained HTML report with charts to this file.",
)
@json_option
@click.pass_obj
def report(
    state: State, since: str, until: str | None, collection: str | None, html_path: Path | None, as_json: bool
) -> None:
    """Deflection report: the funnel (questions -> answered -> not rated down -> deflected), answer rate,
    feedback, handoffs and latency by day and collection; coverage gaps (unanswered questions grouped by
    meaning, with the page that nearly answered) and weak pages.

    Reads the interactions recorded beside the local index, or, with --endpoint and a secret API key,
    the deployed API's GET /analytics/summary and /analytics/gaps.
    """
    from shared.analytics import DeflectionReport, parse_since

    for name, value in (("--since", since), ("--until", until)):
        if value is not None:
            try:
                parse_since(value)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=name) from None
    with user_errors():
        if state.remote:
            client = state.client()
            result = DeflectionReport(
                summary=client.analytics_summary(since=since, until=until, collection=collection),
                gaps=client.analytics_gaps(since=since, until=until, collection=collection),
            )
        else:
            result = _local(state, since, until, collection)
    if html_path is not None:
        from local_cli.report_html import render

        try:
            html_path.write_text(render(result), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {html_path}: {exc.strerror or exc}") from None
        echo(f"wrote {html_path}", err=True)
    if as_json:
        emit(result)
    else:
        print_report(result)
