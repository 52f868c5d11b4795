"""A newcomer's first run, the parts that need no index: a global option given after the command, the
progress lines of `ingest` without a terminal (a fake clock), plural wording, and the empty-index hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from local_cli.main import cli
from local_cli.output import DEMO_HOME, empty_index_lines, plural
from local_cli.progress import IngestProgress, duration
from shared.ingest import duplicate_files
from shared.loaders import SUPPORTED_SUFFIXES, unsupported_type
from tests.conftest import ROOT


def usage_error(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), prog_name="rag-explorer")
    assert result.exit_code == 2, result.output
    return result.output


def test_a_global_option_after_the_command_says_where_it_goes() -> None:
    out = usage_error("ask", "--home", ".rag-demo", "How do I reset the index?")
    assert "No such option" not in out and "Did you mean" not in out
    assert "--home is a global option: it goes before the command" in out
    assert "rag-explorer --home .rag-demo ask 'How do I reset the index?'" in out


def test_every_misplaced_global_option_moves_and_the_api_key_is_not_echoed() -> None:
    out = usage_error(
        "--home",
        "h",
        "search",
        "-k",
        "3",
        "--endpoint=https://api.example.com/v1",
        "--api-key",
        "s3cret",
        "q",
    )
    assert "--endpoint is a global option" in out
    assert "rag-explorer --home h --endpoint https://api.example.com/v1 --api-key KEY search -k 3 q" in out
    assert "s3cret" not in out


def test_options_a_command_has_itself_stay_with_it() -> None:
    # `configure --endpoint` is configure's own option; only --home moves
    out = usage_error("configure", "--endpoint", "https://x.example", "--home", "h")
    assert "rag-explorer --home h configure --endpoint https://x.example" in out


def test_other_unknown_options_keep_clicks_message() -> None:
    out = usage_error("ask", "--nope", "q")
    assert "No such option" in out and "global option" not in out


def test_plural() -> None:
    assert [plural(1, "document"), plural(0, "document"), plural(2, "query", "queries")] == [
        "1 document",
        "0 documents",
        "2 queries",
    ]


def test_duration() -> None:
    assert [duration(4.4), duration(185), duration(7620)] == ["4s", "3m 05s", "2h 07m"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_without_a_terminal_prints_lines_by_time_and_by_tenths(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = FakeClock()
    with IngestProgress(100, tty=False, interval_s=10, clock=clock) as progress:
        progress.embedded([object()] * 256)  # a big first file: chunks count before it is done
        clock.now += 10
        progress.embedded([object()] * 256)
        for i in range(1, 10):
            clock.now += 0.5
            progress.file_done(Path(f"f{i}.md"))
        clock.now += 0.5
        progress.file_done(Path("f10.md"))  # a tenth of the files
        for i in range(11, 101):
            clock.now += 0.01
            progress.file_done(Path(f"f{i}.md"))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Ingesting 100 files ..."
    assert lines[1] == "  0/100 files, 512 chunks embedded, 0.0 files/s, 51.2 chunks/s"
    assert lines[2] == "  10/100 files, 512 chunks embedded, 0.7 files/s, 34.1 chunks/s, about 2m 15s left"
    assert len(lines) == 12 and lines[-1].startswith("  100/100 files, 512 chunks embedded")
    assert lines[-1].endswith("16s in all")


def test_progress_is_quiet_between_intervals(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    with IngestProgress(1, tty=False, interval_s=10, clock=clock) as progress:
        for _ in range(30):
            clock.now += 0.5
            progress.embedded([object()] * 10)
    assert capsys.readouterr().err.splitlines() == [
        "Ingesting 1 file ...",
        "  0/1 file, 200 chunks embedded, 0.0 files/s, 20.0 chunks/s",
    ]


def test_progress_chain_calls_the_services_hook_first() -> None:
    seen: list[int] = []
    progress = IngestProgress(1, tty=False)
    hook = progress.chain(lambda chunks: seen.append(len(chunks)))
    hook([1, 2, 3])
    assert seen == [3] and progress.chunks == 3


def test_empty_index_hint_names_ingest_and_the_demo_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lines = empty_index_lines(str(tmp_path / "home"), ["ask", "How do I reset it?"])
    text = "\n".join(lines)
    assert f"The index in {tmp_path / 'home'} is empty" in text
    assert "rag-explorer ingest PATH" in text and all(s in text for s in SUPPORTED_SUFFIXES)
    assert "rag-explorer --home .rag-demo ask 'How do I reset it?'" in text
    assert "of the repository" in text  # no demo index here
    (tmp_path / DEMO_HOME).mkdir()
    assert "`make demo` put it in ./.rag-demo" in "\n".join(empty_index_lines("~/.rag-explorer", ["status"]))
    # the demo's own home, still empty: no advice to use it
    assert "--home" not in "\n".join(empty_index_lines(DEMO_HOME, ["status"]))


def test_a_file_without_an_extension_says_so() -> None:
    assert unsupported_type("docs/README") == "unsupported file type: no file extension"
    assert unsupported_type("image.PNG") == "unsupported file type '.png'"


def test_a_symlink_to_a_file_of_the_batch_is_its_duplicate(tmp_path: Path) -> None:
    real = tmp_path / "z-guide.md"
    real.write_text("# Guide\n")
    link = tmp_path / "a-link.md"
    link.symlink_to(real)
    other = tmp_path / "other.md"
    other.write_text("# Other\n")
    # the file that is not a link is the original, even when the link sorts first
    assert duplicate_files([link, other, real]) == {link: real}
    assert duplicate_files([link, other]) == {}


def test_every_command_but_serve_takes_json_as_the_readme_says() -> None:
    without = sorted(
        name
        for name, command in cli.commands.items()
        if not any("--json" in param.opts for param in command.params)
    )
    assert without == ["serve"]
    assert "Every command but `serve` takes `--json`" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readmes_json_shapes_name_every_field_of_the_models() -> None:
    from shared.models import AskResponse, Citation, HandoffOffer, SearchHit, SearchResponse

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("search: {") : readme.index("```", readme.index("search: {"))]
    search, ask = block.split("ask:")
    for text, models in ((search, (SearchResponse, SearchHit)), (ask, (AskResponse, Citation, HandoffOffer))):
        for model in models:
            missing = [name for name in model.model_fields if f'"{name}"' not in text]
            assert not missing, f"README's JSON shape lacks {model.__name__} fields {missing}"
