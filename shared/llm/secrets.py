"""Secrets from AWS Secrets Manager, read once per process (a Lambda cold start): the LLM keys, and the
webhook signing secret (:mod:`shared.adapters.support`). A value is never logged or put in an error."""

from __future__ import annotations

import json
from functools import lru_cache

from shared.errors import ConfigError
from shared.extras import needs_extra


@lru_cache(maxsize=8)
def secret_string(secret_arn: str, what: str) -> str:
    """The secret's ``SecretString``; ``what`` names it in errors (e.g. ``"LLM secret"``)."""
    with needs_extra("aws", f"the {what} in Secrets Manager"):
        import boto3

    try:
        return str(boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    except Exception as exc:
        raise ConfigError(f"cannot read the {what} {secret_arn}: {type(exc).__name__}") from exc


@lru_cache(maxsize=8)
def llm_keys(secret_arn: str) -> dict[str, str]:
    """The secret's JSON object with lower-cased keys, e.g. ``{"openai_api_key": "..."}``."""
    value = secret_string(secret_arn, "LLM secret")
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"cannot read the LLM secret {secret_arn}: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"the LLM secret {secret_arn} must hold a JSON object")
    return {str(k).lower(): str(v) for k, v in data.items()}
