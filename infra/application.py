"""Build one stage of RAG Explorer into a CDK app: the stacks, tags and the cdk-nag checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import App, Aspects, Tags

from infra.bundling import DEFAULT_CACHE_DIR
from infra.components.helper_logs import HelperFunctionLogs
from infra.config import StageConfig
from infra.nag import add_nag_checks
from infra.stacks.stateful import StatefulStack
from infra.stacks.stateless import StatelessStack


@dataclass(frozen=True)
class Stage:
    stateful: StatefulStack
    stateless: StatelessStack


def stack_prefix(config: StageConfig) -> str:
    return f"RagExplorer-{config.name}"


def build_stage(app: App, config: StageConfig, *, cache_dir: Path = DEFAULT_CACHE_DIR) -> Stage:
    """Add the stage's stacks to ``app`` (environment-agnostic: the account and region come from the
    credentials at deploy time), give CDK's own helper functions log groups with the stage's retention,
    and run cdk-nag's AwsSolutions pack on them at synthesis."""
    prefix = stack_prefix(config)
    stateful = StatefulStack(app, f"{prefix}-Stateful", config=config, cache_dir=cache_dir)
    stateless = StatelessStack(
        app, f"{prefix}-Stateless", config=config, stateful=stateful, cache_dir=cache_dir
    )
    Tags.of(app).add("project", "rag-explorer")
    Tags.of(app).add("stage", config.name)
    Aspects.of(app).add(HelperFunctionLogs(log_retention=config.log_retention))
    add_nag_checks(app)
    return Stage(stateful=stateful, stateless=stateless)
