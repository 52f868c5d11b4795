"""cdk-nag 3 (AwsSolutions pack, through Validations.of(app).add_plugins): no unacknowledged finding in
either stage, every acknowledgment has a specific reason and matches a real finding, and prod needs fewer
acknowledgments than dev."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import aws_cdk as cdk
import pytest

import infra.nag
from infra.nag import AcknowledgedRule, acknowledged_rules
from tests.infra.conftest import REPORT, Synthesized, synthesize

PACK = "AwsSolutions-"


def nag_acknowledgments(stage: Synthesized) -> list[AcknowledgedRule]:
    return [a for a in acknowledged_rules(stage.app) if a.rule_id.startswith(PACK)]


def violations(outdir: Path) -> list[tuple[str, str]]:
    """(rule id, construct path) of every finding in the cloud assembly's validation report."""
    report = outdir / "validation-report.json"
    if not report.exists():
        return []
    found = []
    for plugin in json.loads(report.read_text())["pluginReports"]:
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", violation.get("violatingResources", [])):
                found.append((violation["ruleName"], construct["constructPath"]))
    return found


def test_no_unacknowledged_findings(stage: Synthesized) -> None:
    assert stage.error is None, stage.error
    assert violations(stage.outdir) == []


def test_every_acknowledgment_has_a_specific_reason(stage: Synthesized) -> None:
    acks = nag_acknowledgments(stage)
    assert acks
    for ack in acks:
        assert len(ack.reason) >= 40, ack
    # one reason is not pasted over unrelated rules
    reasons = Counter((a.reason, a.rule_id.split("[")[0]) for a in acks)
    assert len({reason for reason, _ in reasons}) == len(reasons), "a reason is reused for different rules"


def test_prod_needs_fewer_acknowledgments_than_dev(dev: Synthesized, prod: Synthesized) -> None:
    counts = {s.stage: nag_acknowledgments(s) for s in (dev, prod)}
    rules = {stage: {a.rule_id.split("[")[0] for a in acks} for stage, acks in counts.items()}
    REPORT["cdk-nag acknowledgments"] = (
        f"dev {len(counts['dev'])} ({len(rules['dev'])} rules), "
        f"prod {len(counts['prod'])} ({len(rules['prod'])} rules); "
        f"dev only: {sorted(rules['dev'] - rules['prod'])}, prod only: {sorted(rules['prod'] - rules['dev'])}"
    )
    assert len(counts["prod"]) < len(counts["dev"])
    assert len(rules["prod"]) < len(rules["dev"])
    # what dev gives up for cost, prod has
    assert {"AwsSolutions-OS1", "AwsSolutions-OS4", "AwsSolutions-OS7", "AwsSolutions-APIG3"} <= rules["dev"]
    assert (
        not {"AwsSolutions-OS1", "AwsSolutions-OS4", "AwsSolutions-OS7", "AwsSolutions-APIG3"} & rules["prod"]
    )


class _Recorder:
    """Stands in for ``aws_cdk.Validations`` in infra.nag: records acknowledgments, applies none."""

    recorded: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, scope: Any) -> None:
        self.scope = scope

    @classmethod
    def of(cls, scope: Any) -> Any:
        if isinstance(scope, cdk.App):  # add_plugins: the real thing
            return cdk.Validations.of(scope)
        return cls(scope)

    def acknowledge(self, *rules: cdk.Acknowledgment) -> None:
        self.recorded.extend((self.scope.node.path, rule.id) for rule in rules)


@pytest.mark.parametrize("stage_name", ["dev", "prod"])
def test_every_acknowledgment_matches_a_finding(
    stage_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synthesized with acknowledgments recorded but not applied, each one must name a finding that the
    pack reports at or below its construct: no stale or mistyped acknowledgment hides anything."""
    _Recorder.recorded = []
    monkeypatch.setattr(infra.nag, "Validations", _Recorder)
    bare = synthesize(stage_name, tmp_path)
    assert bare.error is not None  # without acknowledgments, the pack fails the synthesis
    found = violations(tmp_path)
    unused = [
        (path, rule)
        for path, rule in _Recorder.recorded
        if not any(
            v_rule == rule and (v_path == path or v_path.startswith(path + "/")) for v_rule, v_path in found
        )
    ]
    assert unused == []
    uncovered = [
        (rule, path)
        for rule, path in found
        if not any(
            rule == a_rule and (path == a_path or path.startswith(a_path + "/"))
            for a_path, a_rule in _Recorder.recorded
        )
    ]
    assert uncovered == []
