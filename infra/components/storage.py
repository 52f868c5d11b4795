"""The document bucket (the source of truth the index follows) and its server access log bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge_wildcard_resource

# pinned so that a refactoring of the construct tree can never replace (and empty) the bucket
DOCUMENT_BUCKET_LOGICAL_ID = "DocumentBucket"
ACCESS_LOG_BUCKET_LOGICAL_ID = "DocumentAccessLogBucket"


class DocumentStore(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        noncurrent_version_expiration: Duration,
        access_log_expiration_days: int = 365,
    ) -> None:
        super().__init__(scope, construct_id)
        destroy = removal_policy == RemovalPolicy.DESTROY
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption S3 log delivery supports
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs", expiration=Duration.days(access_log_expiration_days)
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        self.bucket = s3.Bucket(
            self,
            "Documents",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="documents/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=noncurrent_version_expiration,
                    noncurrent_versions_to_retain=3,
                    expired_object_delete_marker=True,
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        documents = self._cfn(self.bucket)
        documents.override_logical_id(DOCUMENT_BUCKET_LOGICAL_ID)
        # Object events go to EventBridge (a rule of the stateless stack sends them to the ingest queue).
        # Set on the bucket itself: the L2's event_bridge_enabled, like bucket notifications, goes through
        # CDK's notifications custom resource, which cannot update its own entries reliably.
        documents.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        self._cfn(self.access_log_bucket).override_logical_id(ACCESS_LOG_BUCKET_LOGICAL_ID)

    @staticmethod
    def _cfn(bucket: s3.Bucket) -> s3.CfnBucket:
        cfn = bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        return cfn

    def grant_read_documents(self, grantee: iam.IGrantable, *, policy_owner: Construct) -> None:
        """Read objects and list the bucket: without ``s3:ListBucket`` a missing key reads as 403, not 404,
        and the ingest function could not tell a deleted document from a failure."""
        objects = self.bucket.arn_for_objects("*")
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:GetObject"], resource_arns=[objects])
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:ListBucket"], resource_arns=[self.bucket.bucket_arn]
        )
        acknowledge_wildcard_resource(
            policy_owner, objects, "Any document in the bucket may be indexed: object-level read on its keys."
        )

    def grant_check_bucket(self, grantee: iam.IGrantable) -> None:
        """``head_bucket`` for the readiness check (``s3:ListBucket`` on the bucket, no object access)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:ListBucket"], resource_arns=[self.bucket.bucket_arn]
        )
