"""Commands that read the index (local, or the deployed API with --endpoint): `ask`, `search`, `eval`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from local_cli.commands.documents import collection_option
from local_cli.output import (
    UserError,
    echo,
    print_answer,
    print_empty_index,
    print_eval,
    print_hits,
    secho,
)
from local_cli.state import (
    State,
    emit,
    filter_options,
    filters_from,
    json_option,
    run_batch,
    user_errors,
    wait_option,
)

if TYPE_CHECKING:
    from shared.models import AskResponse, SearchFilter, SearchResponse

_COLLECTION_HELP = "Only documents of this collection."
#: The first reason of a refusal when the local index holds nothing at all.
EMPTY_INDEX_REASON = "the index is empty: no document has been ingested yet"


def _empty_index(state: State, response: AskResponse | None = None) -> bool:
    """Whether the local index is empty (checked only after a refusal or no hits); a refusal then says so
    first."""
    if response is not None and response.decision != "refuse":
        return False
    empty = state.empty_index()
    if empty and response is not None:
        response.reasons.insert(0, EMPTY_INDEX_REASON)
    return empty


def _filters(source_prefix: str | None, tags: tuple[str, ...], collection: str | None) -> SearchFilter | None:
    """The ``--source-prefix``, ``--tag`` and ``--collection`` filter (None: search everything)."""
    filters = filters_from(source_prefix, tags)
    if collection is None:
        return filters
    from shared.models import SearchFilter

    return (filters or SearchFilter()).model_copy(update={"collection": collection})


@click.command()
@click.argument("question", required=False)
@click.option(
    "--batch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON Lines file of {"id": ..., "question": ...}; prints one JSON line per input.',
)
@click.option("--max-chunks", type=click.IntRange(1, 20), help="Chunks considered for the answer.")
@click.option(
    "--threshold", "confidence_threshold", type=click.FloatRange(0, 1), help="Refuse below this confidence."
)
@click.option(
    "--stream",
    is_flag=True,
    help="Print the generated answer as it arrives (LLM providers), then the sources.",
)
@click.option(
    "--no-log",
    is_flag=True,
    envvar="RAG_EXPLORER_NO_LOG",
    help="Do not record this question in the home's interactions (for `report`); the deployed API "
    "records what it answers itself. [env RAG_EXPLORER_NO_LOG]",
)
@filter_options
@collection_option(_COLLECTION_HELP)
@json_option
@click.pass_obj
def ask(
    state: State,
    question: str | None,
    batch: Path | None,
    max_chunks: int | None,
    confidence_threshold: float | None,
    stream: bool,
    source_prefix: str | None,
    tags: tuple[str, ...],
    collection: str | None,
    no_log: bool,
    as_json: bool,
) -> None:
    """Answer QUESTION with numbered citations, or refuse with reasons.

    Locally each answer is recorded in the home's interactions (see `report`) unless --no-log or the
    `record_interactions` setting is off."""
    if (question is None) == (batch is None):
        raise click.UsageError("give a QUESTION or --batch FILE (not both)")
    if stream and (batch is not None or as_json or state.remote):
        raise click.UsageError(
            "--stream prints text for one local question: not with --batch, --json or --endpoint"
        )
    filters = _filters(source_prefix, tags, collection)
    record = _recorder(state, filters, enabled=not no_log and not state.remote)
    if stream:
        assert question is not None
        _ask_stream(state, question, max_chunks, confidence_threshold, filters, record)
        return
    service = state.backend()

    def handle(q: str) -> AskResponse:
        started = time.perf_counter()
        response = service.ask(
            q, max_chunks=max_chunks, confidence_threshold=confidence_threshold, filters=filters
        )
        return record(response, (time.perf_counter() - started) * 1000)

    if batch is not None:
        with user_errors():
            run_batch(batch, ("question", "query", "text"), handle)
        if state.empty_index():
            print_empty_index(state.settings().home_path, ["ask", "--batch", str(batch)], note=True)
        return
    assert question is not None
    with user_errors():
        response = handle(question)
    empty = _empty_index(state, response)
    if as_json:
        emit(response)
    else:
        print_answer(response)
    if empty:
        print_empty_index(state.settings().home_path, ["ask", question], note=as_json)


def _recorder(
    state: State, filters: SearchFilter | None, *, enabled: bool
) -> Callable[[AskResponse, float], AskResponse]:
    """Records a local answer in the home's interactions, as the API does (the same support desk)."""
    if not enabled or not state.settings().record_interactions:
        return lambda response, _ms: response
    from shared.adapters.support import make_desk

    desk = make_desk(state.settings())
    collection = filters.collection if filters else None

    def record(response: AskResponse, latency_ms: float) -> AskResponse:
        with user_errors():
            return desk.record(response, collection=collection, latency_ms=round(latency_ms, 1))

    return record


def _ask_stream(
    state: State,
    question: str,
    max_chunks: int | None,
    confidence_threshold: float | None,
    filters: SearchFilter | None,
    record: Callable[[AskResponse, float], AskResponse],
) -> None:
    streamed = False
    started = time.perf_counter()
    with user_errors():
        for item in state.service().ask_stream(
            question, max_chunks=max_chunks, confidence_threshold=confidence_threshold, filters=filters
        ):
            if isinstance(item, str):
                echo(item, nl=False)
                streamed = True
                continue
            item = record(item, (time.perf_counter() - started) * 1000)
            empty = _empty_index(state, item)
            if streamed:
                echo("\n")
                if item.decision == "answer" and item.provider != "extractive":
                    secho(f"Verified answer ({item.provider})", bold=True)
            print_answer(item)
            if empty:
                print_empty_index(state.settings().home_path, ["ask", question])


@click.command()
@click.argument("query", required=False)
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 100), help="Number of hits [default 5].")
@click.option(
    "--batch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON Lines file of {"id": ..., "question": ...}; prints one JSON line per input.',
)
@filter_options
@collection_option(_COLLECTION_HELP)
@json_option
@click.pass_obj
def search(
    state: State,
    query: str | None,
    k: int | None,
    batch: Path | None,
    source_prefix: str | None,
    tags: tuple[str, ...],
    collection: str | None,
    as_json: bool,
) -> None:
    """Show the chunks that best match QUERY (hybrid: embeddings + BM25)."""
    if (query is None) == (batch is None):
        raise click.UsageError("give a QUERY or --batch FILE (not both)")
    service = state.backend()
    filters = _filters(source_prefix, tags, collection)

    def handle(q: str) -> SearchResponse:
        return service.search(q, k=k, filters=filters)

    if batch is not None:
        with user_errors():
            run_batch(batch, ("question", "query", "text"), handle)
        if state.empty_index():
            print_empty_index(state.settings().home_path, ["search", "--batch", str(batch)], note=True)
        return
    assert query is not None
    with user_errors():
        response = handle(query)
    empty = not response.hits and state.empty_index()
    if as_json:
        emit(response)
    else:
        print_hits(response)
    if empty:
        print_empty_index(state.settings().home_path, ["search", query], note=as_json)


@click.command("eval")
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--target",
    default="local",
    show_default=True,
    help="`local` (the index under --home, or --endpoint when set) or an http(s) URL of the API.",
)
@click.option("--split", default="test", show_default=True, help="qrels split of a BEIR folder.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Per-question results as JSON Lines; ids already there are skipped (resume).",
)
@click.option("--min-ndcg", type=click.FloatRange(0, 1), help="Exit 1 if nDCG@10 is below this.")
@click.option("--min-hit-rate", type=click.FloatRange(0, 1), help="Exit 1 if hit@5 is below this.")
@click.option(
    "--min-refusal-precision", type=click.FloatRange(0, 1), help="Exit 1 if refusal precision is below this."
)
@wait_option
@json_option
@click.pass_obj
def eval_(
    state: State,
    dataset: Path,
    target: str,
    split: str,
    output: Path | None,
    min_ndcg: float | None,
    min_hit_rate: float | None,
    min_refusal_precision: float | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Measure retrieval and answer quality on DATASET: a BEIR folder or a JSON Lines QA file.

    \b
    QA lines: {"id": ..., "question": ..., "expected_sources": ["docs/x.md", ...] | null}
    (null: out of scope, the right outcome is a refusal; add "negative": "same-domain" or
    "unrelated" to have refusals reported for each kind). An answer counts as correct when its
    first citation is on an expected page; the reliability table and ECE compare the answers'
    confidence with how often they were correct.
    """
    from shared.evaluation import load_dataset, run_eval, summarize

    with user_errors():
        ds = load_dataset(dataset, split=split)
    if target not in ("local",) and not target.startswith(("http://", "https://")):
        raise click.BadParameter("use `local` or an http(s) URL", param_hint="--target")
    backend = state.client(target) if target != "local" else state.backend()
    where = target if target != "local" else (state.settings().endpoint or f"local:{state.settings().home}")
    if ds.corpus is not None and target == "local" and not state.remote:
        echo(f"ingesting {ds.corpus} (unchanged documents are skipped) ...", err=True)
        with state.writing("eval", wait=wait), user_errors():
            state.service().ingest([ds.corpus])
    # the HTTP API caps k at 100; locally more chunks give Recall@100 over 100 distinct documents
    k = 100 if target != "local" or state.remote else 300
    bar: Any
    with (
        user_errors(),
        click.progressbar(length=len(ds.items), label="Evaluating", file=sys.stderr, show_pos=True) as bar,
    ):
        results = run_eval(ds, backend, output=output, k=k, on_result=lambda _r: bar.update(1))
        bar.update(len(ds.items) - bar.pos)
    summary = summarize(results, dataset=str(dataset), target=where)
    values = summary.model_dump(by_alias=True)
    if as_json:
        click.echo(json.dumps(values, indent=2))
    else:
        print_eval(summary, values, where)
    failed = [
        f"{name} {values[key]} < {minimum}"
        for name, key, minimum in (
            ("nDCG@10", "ndcg@10", min_ndcg),
            ("hit@5", "hit@5", min_hit_rate),
            ("refusal precision", "refusal_precision", min_refusal_precision),
        )
        if minimum is not None and (values[key] is None or values[key] < minimum)
    ]
    if summary.errors:
        failed.append(f"{summary.errors} questions failed with errors")
    if failed and (min_ndcg is not None or min_hit_rate is not None or min_refusal_precision is not None):
        raise UserError("quality gate failed: " + "; ".join(failed))
