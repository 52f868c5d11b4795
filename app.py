#!/usr/bin/env python3
"""CDK application entry point. The only module that reads CDK context or the environment.

The stacks (storage, search, ingestion, API, monitoring) are being built; until then this synthesizes
an empty app.
"""

import aws_cdk as cdk

app = cdk.App()
app.synth()
