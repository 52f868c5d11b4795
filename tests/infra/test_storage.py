"""The document bucket and its access log bucket (stateful stack)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from infra.components.storage import ACCESS_LOG_BUCKET_LOGICAL_ID, DOCUMENT_BUCKET_LOGICAL_ID
from tests.infra.conftest import Synthesized


def bucket(stage: Synthesized, logical_id: str) -> dict[str, Any]:
    buckets = stage.resources(stage.stateful, "AWS::S3::Bucket")
    assert logical_id in buckets, f"logical id {logical_id} is pinned; found {sorted(buckets)}"
    found: dict[str, Any] = buckets[logical_id]
    return found


def test_logical_ids_are_pinned(stage: Synthesized) -> None:
    bucket(stage, DOCUMENT_BUCKET_LOGICAL_ID)
    bucket(stage, ACCESS_LOG_BUCKET_LOGICAL_ID)


def test_document_bucket_is_encrypted_versioned_private_and_logged(stage: Synthesized) -> None:
    props = bucket(stage, DOCUMENT_BUCKET_LOGICAL_ID)["Properties"]
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": ACCESS_LOG_BUCKET_LOGICAL_ID},
        "LogFilePrefix": "documents/",
    }
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == (
        7 if stage.stage == "dev" else 90
    )
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_document_bucket_policy_denies_plain_http_and_old_tls(stage: Synthesized) -> None:
    stage.stateful.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": DOCUMENT_BUCKET_LOGICAL_ID},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        ),
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}}}
                        ),
                    ]
                )
            },
        },
    )


def test_retention(dev: Synthesized, prod: Synthesized) -> None:
    assert bucket(dev, DOCUMENT_BUCKET_LOGICAL_ID)["DeletionPolicy"] == "Delete"
    assert bucket(prod, DOCUMENT_BUCKET_LOGICAL_ID)["DeletionPolicy"] == "Retain"
    assert bucket(prod, DOCUMENT_BUCKET_LOGICAL_ID)["UpdateReplacePolicy"] == "Retain"
    # dev empties its buckets on destroy; prod never deletes objects
    assert dev.resources(dev.stateful, "Custom::S3AutoDeleteObjects")
    assert not prod.resources(prod.stateful, "Custom::S3AutoDeleteObjects")
