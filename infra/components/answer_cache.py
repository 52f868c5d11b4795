"""The shared answer cache: identical questions answered once across all warm query functions, read and
written by ``shared.adapters.answer_cache_dynamodb`` (keys ``cache_key``, TTL on ``expires_at``).

A cache, not a record: on demand, no point-in-time recovery, always deleted with the stack (losing it
only costs a recomputation), and entries expire by TTL. Keys include the index version, so an ingest
or a removal makes every old entry unreachable at once.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import acknowledge
from shared.adapters.answer_cache_dynamodb import KEY_ATTRIBUTE, TTL_ATTRIBUTE

#: What DynamoAnswerCache calls (never Update, Delete or Scan).
CACHE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")


class AnswerCacheTable(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,  # nothing to pay while idle
            time_to_live_attribute=TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # derived data: recomputed on a miss, so neither backups nor retention are worth paying for
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=False
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.table,
            "AwsSolutions-DDB3",
            "A cache of derived answers with a TTL of an hour: a restore would bring back nothing that "
            "a miss does not recompute, so point-in-time recovery would be paid for nothing",
        )

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def grant_cache(self, grantee: iam.IGrantable) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(CACHE_ACTIONS), resource_arns=[self.table.table_arn]
        )
