"""`npx cdk synth` for both stages with the pinned CLI, offline: in a network namespace of its own when
the machine allows one (``unshare -rn``), otherwise with pip and npm told to stay offline. The Lambda
assets are bundled for real (arm64, from the local wheel cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from infra.bundling import LAMBDA_ARM64_PY312, dependency_site, tree_size
from tests.infra.conftest import REPORT, ROOT

CDK = ROOT / "node_modules" / ".bin" / "cdk"
VENV_BIN = ROOT / ".venv" / "bin"


def offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-rn"]
    return []


@pytest.mark.slow
def test_cdk_synth_both_stages_offline(tmp_path: Path) -> None:
    assert CDK.exists(), "run `npm ci` (make test does) to install the pinned CDK CLI"
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]["node_modules/aws-cdk"][
        "version"
    ]
    assert pinned == locked
    dependency_site(LAMBDA_ARM64_PY312)  # the wheel cache: the one step that may need the network
    prefix = offline_prefix()
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "npm_config_offline": "true",
        "PIP_NO_INDEX": "1",
    }
    timings = {}
    for stage in ("dev", "prod"):
        outdir = tmp_path / stage
        started = time.perf_counter()
        result = subprocess.run(
            [
                *prefix,
                str(CDK),
                "synth",
                "--quiet",
                "--no-notices",
                "-c",
                f"stage={stage}",
                "-o",
                str(outdir),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        timings[stage] = time.perf_counter() - started
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        templates = sorted(p.name for p in outdir.glob("*.template.json"))
        assert templates == [
            f"RagExplorer-{stage}-Stateful.template.json",
            f"RagExplorer-{stage}-Stateless.template.json",
        ]
        bundled = [p for p in outdir.glob("asset.*") if (p / "handler.py").is_file()]
        assert len(bundled) == 3
        for asset in bundled:
            assert (asset / "shared" / "service.py").is_file() and (asset / "numpy").is_dir()
            assert tree_size(asset) < 250 * 2**20
    REPORT["npx cdk synth (offline" + (", own network namespace" if prefix else "") + ")"] = ", ".join(
        f"{stage} {seconds:.1f} s" for stage, seconds in timings.items()
    )
