#!/usr/bin/env python3
"""CDK application entry point: the only module that reads CDK context or the environment.

    npx cdk synth                      # the dev stage (cdk.json sets stage=dev)
    npx cdk deploy --all -c stage=prod # the prod stage
    npx cdk deploy --all -c removal_policy=retain   # dev, but keep the bucket and domain on destroy
    npx cdk deploy --all -c admin_role_arns=arn:aws:iam::123456789012:role/Admin   # domain administrators
    npx cdk deploy --all -c store=s3vectors  # Amazon S3 Vectors instead of the OpenSearch domain (no VPC)

The stacks are built by infra.application.build_stage from the typed configuration in infra/config.py.
"""

from __future__ import annotations

import aws_cdk as cdk

from infra.application import build_stage
from infra.config import stage_config

app = cdk.App()
stage = str(app.node.try_get_context("stage") or "dev")
removal_policy = app.node.try_get_context("removal_policy")
admins = app.node.try_get_context("admin_role_arns")  # comma-separated IAM role ARNs (domain administrators)
store = app.node.try_get_context("store")  # opensearch (the default) or s3vectors
build_stage(
    app,
    stage_config(
        stage,
        dev_removal_policy=str(removal_policy) if removal_policy else None,
        admin_role_arns=str(admins) if admins is not None else None,
        store=str(store) if store else None,
    ),
)
app.synth()
