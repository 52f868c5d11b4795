"""The interactions table: one item per help-widget question and answer (for feedback, handoffs and
reports), written and read by the query function through ``shared.adapters.interactions_dynamodb``.

Its keys are that adapter's: partition key ``interaction_id``, the ``by_day`` index (``day``, sorted by
``created_at``) for reading a period without a scan, and ``expires_at`` (epoch seconds) as the TTL
attribute, which is how the retention of ``WidgetConfig.interaction_retention_days`` is enforced.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from shared.adapters.interactions_dynamodb import DAY_INDEX

# pinned so that a refactoring of the construct tree can never replace (and empty) the table
INTERACTIONS_TABLE_LOGICAL_ID = "InteractionsTable"
TTL_ATTRIBUTE = "expires_at"
# what DynamoInteractionStore calls: put_item and get_item on the table, query on the by_day index
TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
INDEX_ACTIONS = ("dynamodb:Query",)


class InteractionsTable(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        retain = removal_policy == RemovalPolicy.RETAIN
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="interaction_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,  # nothing to pay while idle
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # the AWS managed key (aws/dynamodb), like the domain's encryption at rest: no key to pay
            # for or rotate, and each use is in CloudTrail
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=retain,
            removal_policy=removal_policy,
        )
        self.table.add_global_secondary_index(
            index_name=DAY_INDEX,
            partition_key=dynamodb.Attribute(name="day", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,  # reports read the whole record from the index
        )
        cfn = self.table.node.default_child
        assert isinstance(cfn, dynamodb.CfnTable)
        cfn.override_logical_id(INTERACTIONS_TABLE_LOGICAL_ID)

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def grant_record(self, grantee: iam.IGrantable) -> None:
        """Exactly what the interaction store does: get and put items, query the ``by_day`` index. (Not
        ``grant_read_write_data``: that adds Scan, DeleteItem, the batch calls and every index.)"""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(TABLE_ACTIONS), resource_arns=[self.table.table_arn]
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(INDEX_ACTIONS),
            resource_arns=[f"{self.table.table_arn}/index/{DAY_INDEX}"],
        )
