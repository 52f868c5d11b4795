"""cfn-lint on every synthesized template of both stages: zero errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.infra.conftest import Synthesized

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def test_templates_have_no_cfn_lint_errors(stage: Synthesized) -> None:
    templates = stage.template_files()
    assert len(templates) == 2
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # exit code bits: 2 errors, 4 warnings, 8 informational; anything else is a crash
    assert result.returncode in (0, 4, 8, 12), result.stderr[-2000:]
    findings = json.loads(result.stdout)
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)[:4000]
