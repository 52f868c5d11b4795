"""Fixtures for the CDK tests: each stage synthesized once per session, with cdk.json's context (the
feature flags the CLI uses) and without bundling (``aws:cdk:bundling-stacks: []``); cdk-nag runs as it
does for ``cdk synth``."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii's node banner, and the CDK CLI's telemetry, in every child process the tests start
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.application import build_stage
from infra.config import StageConfig, WidgetConfig, collection, site, stage_config

ROOT = Path(__file__).resolve().parents[2]

# facts the infra tests measure (asset sizes, synth times, acknowledgment counts), printed at the end
REPORT: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("RAG Explorer infrastructure")
        for key in sorted(REPORT):
            terminalreporter.write_line(f"{key}: {REPORT[key]}")


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context


@dataclass
class Synthesized:
    stage: str
    app: cdk.App
    outdir: Path
    stateful: Template
    stateless: Template
    error: str | None  # the validation (cdk-nag) failure, if any

    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))

    def resources(self, template: Template, resource_type: str) -> dict[str, Any]:
        return dict(template.find_resources(resource_type))


def synthesize(stage: str, outdir: Path, *, config: StageConfig | None = None, **context: Any) -> Synthesized:
    app = cdk.App(
        outdir=str(outdir), context={**cdk_json_context(), "aws:cdk:bundling-stacks": [], **context}
    )
    built = build_stage(app, config or stage_config(stage))
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings fail synthesis, as they do for `cdk synth`
        error = str(exc)
    return Synthesized(
        stage=stage,
        app=app,
        outdir=outdir,
        stateful=Template.from_json(
            json.loads((outdir / f"{built.stateful.stack_name}.template.json").read_text())
        ),
        stateless=Template.from_json(
            json.loads((outdir / f"{built.stateless.stack_name}.template.json").read_text())
        ),
        error=error,
    )


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize("prod", tmp_path_factory.mktemp("cdk-prod"))


def prod_with_sites() -> StageConfig:
    """prod with two help-widget sites, collections with a form and a webhook handoff (so the webhook
    secret), and the NAT gateway a webhook needs from the VPC."""
    prod = stage_config("prod")
    assert prod.network is not None
    return dataclasses.replace(
        prod,
        network=dataclasses.replace(prod.network, nat_gateways=1),
        widget=WidgetConfig(
            sites=(
                site("help-center", collection="help", origins=["https://help.example.com"]),
                site("docs_site", origins=["https://docs.example.com", "https://www.example.com"]),
            ),
            collections={
                "help": collection(
                    url_template="https://help.example.com/{path}",
                    handoff="webhook:https://hooks.example.com/tickets",
                    prefix="help-center/",
                ),
                "default": collection(handoff="https://support.example.com/new?q={question}"),
            },
        ),
    )


@pytest.fixture(scope="session")
def widget(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The prod stage with sites and a webhook handoff (:func:`prod_with_sites`)."""
    return synthesize("prod", tmp_path_factory.mktemp("cdk-widget"), config=prod_with_sites())


@pytest.fixture(params=["dev", "prod"])
def stage(request: pytest.FixtureRequest) -> Synthesized:
    synthesized: Synthesized = request.getfixturevalue(request.param)
    return synthesized
