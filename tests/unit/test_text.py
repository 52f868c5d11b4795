"""Text utilities: blocks of a chunk, and which question words name something specific."""

from __future__ import annotations

import pytest

from shared.text import common_words, salient, specific, split_blocks

TEXT = """Intro sentence one.
Still the intro:

```
code a

code b
```

Steps:

1. first
   continued
2. second

| a | b |
|---|---|

    indented code
    more

Final."""


def test_split_blocks_kinds_and_spans() -> None:
    blocks = [(kind, TEXT[s:e]) for kind, s, e in split_blocks(TEXT)]
    assert blocks == [
        ("prose", "Intro sentence one.\nStill the intro:"),
        ("code", "```\ncode a\n\ncode b\n```"),
        ("prose", "Steps:"),
        ("list", "1. first\n   continued\n2. second"),
        ("table", "| a | b |\n|---|---|"),
        ("code", "    indented code\n    more"),
        ("prose", "Final."),
    ]


def test_an_unclosed_fence_runs_to_the_end() -> None:
    text = "Run:\n\n```\nnever closed\nstill code"
    assert [k for k, _, _ in split_blocks(text)] == ["prose", "code"]


@pytest.mark.skipif(not common_words(), reason="the MiniLM model package (its vocabulary) is not installed")
@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("restic", True),  # a product name the vocabulary does not know
        ("kubernetes", True),
        ("sigstore", True),
        ("laptop", False),  # everyday English
        ("notebooks", False),  # an inflection of an everyday word
        ("acident", False),  # a typo of one
        ("comitting", False),
        ("doesnt", False),  # a contraction without its apostrophe
        ("mytool", False),  # a placeholder name
        ("2tb", False),  # a number with a unit
        ("django_settings_module", False),  # an identifier
        ("how", False),  # a question word
    ],
)
def test_specific_words(word: str, expected: bool) -> None:
    assert specific(word) is expected


def test_salient_drops_stop_and_generic_words() -> None:
    assert not salient("the") and not salient("trouble") and not salient("42")
    assert salient("backup")
