"""LLM API keys from AWS Secrets Manager, read once per process (a Lambda cold start)."""

from __future__ import annotations

import json
from functools import lru_cache

from shared.errors import ConfigError
from shared.extras import needs_extra


@lru_cache(maxsize=8)
def llm_keys(secret_arn: str) -> dict[str, str]:
    """The secret's JSON object with lower-cased keys, e.g. ``{"openai_api_key": "..."}``. The value is
    never logged or put in an error message."""
    with needs_extra("aws", "LLM keys from Secrets Manager"):
        import boto3

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
        data = json.loads(value)
    except Exception as exc:
        raise ConfigError(f"cannot read the LLM secret {secret_arn}: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"the LLM secret {secret_arn} must hold a JSON object")
    return {str(k).lower(): str(v) for k, v in data.items()}
