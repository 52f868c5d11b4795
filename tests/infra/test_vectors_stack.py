"""The S3 Vectors store profile (``-c store=s3vectors``): both stages synthesize with both stores; the vector
bucket and index, their setup custom resource, the functions' grants and environment, monitoring without
a cluster, cdk-nag and cfn-lint. The OpenSearch profile stays the default."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import infra.nag
from infra.components.vectors import READ_ACTIONS, SETUP_ACTIONS, WRITE_ACTIONS
from infra.config import STAGES, stage_config, with_store
from shared.embeddings.minilm import MiniLMEmbedder
from shared.stores.s3vectors_requests import INDEX_MODE, NON_FILTERABLE_KEYS, TEXT_SEARCH
from tests.infra.conftest import Synthesized, synthesize
from tests.infra.test_nag import _Recorder, nag_acknowledgments, violations

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
INGEST_ACTIONS = {
    "s3vectors:PutVectors",
    "s3vectors:DeleteVectors",
    "s3vectors:GetVectors",
    "s3vectors:ListVectors",
    "s3vectors:QueryVectors",
    "s3vectors:GetIndex",
}
QUERY_ACTIONS = {
    "s3vectors:QueryVectors",
    "s3vectors:GetVectors",
    "s3vectors:ListVectors",
    "s3vectors:GetIndex",
}


@pytest.fixture(scope="module")
def dev_vectors(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        "dev", tmp_path_factory.mktemp("cdk-dev-s3v"), config=stage_config("dev", store="s3vectors")
    )


@pytest.fixture(scope="module")
def prod_vectors(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        "prod", tmp_path_factory.mktemp("cdk-prod-s3v"), config=stage_config("prod", store="s3vectors")
    )


@pytest.fixture(params=["dev_vectors", "prod_vectors"])
def vectors(request: pytest.FixtureRequest) -> Synthesized:
    synthesized: Synthesized = request.getfixturevalue(request.param)
    return synthesized


def one(stage: Synthesized, template: Any, resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = stage.resources(template, resource_type).items()
    return found


def statements(template: Any, prefix: str) -> list[dict[str, Any]]:
    """The statements of the IAM policies whose logical id starts with ``prefix``, actions as lists."""
    found = []
    for name, policy in template.find_resources("AWS::IAM::Policy").items():
        if name.startswith(prefix):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                found.append({**statement, "Action": action if isinstance(action, list) else [action]})
    return found


def s3vectors_grants(template: Any, prefix: str) -> list[dict[str, Any]]:
    return [s for s in statements(template, prefix) if any(a.startswith("s3vectors:") for a in s["Action"])]


def imported_output(stage: Synthesized, value: Any) -> Any:
    """The stateful stack's output value behind a cross-stack reference of the stateless stack."""
    name = value["Fn::GetStackOutput"]["OutputName"]
    return stage.stateful.to_json()["Outputs"][name]["Value"]


# ---------------------------------------------------------------------------------------- configuration


def test_opensearch_stays_the_default_and_s3vectors_drops_the_vpc() -> None:
    for name in STAGES:
        assert stage_config(name).store == "opensearch"
    assert stage_config("prod").network is not None
    prod = stage_config("prod", store="s3vectors")
    assert prod.store == "s3vectors" and prod.network is None
    assert with_store(prod, "opensearch").store == "opensearch"
    assert prod.vectors.dimension == MiniLMEmbedder.dimension == 384


def test_an_unknown_store_or_a_vpc_with_s3vectors_is_refused() -> None:
    with pytest.raises(ValueError, match="store must be one of opensearch, s3vectors, not 'chroma'"):
        stage_config("dev", store="chroma")
    with pytest.raises(ValueError, match="set network=None"):
        dataclasses.replace(stage_config("prod"), store="s3vectors")


@pytest.mark.parametrize("fixture", ["dev", "prod", "dev_vectors", "prod_vectors"])
def test_both_stages_synthesize_with_both_stores(fixture: str, request: pytest.FixtureRequest) -> None:
    stage: Synthesized = request.getfixturevalue(fixture)
    assert stage.error is None, stage.error
    domains = stage.resources(stage.stateful, "AWS::OpenSearchService::Domain")
    indexes = stage.resources(stage.stateful, "AWS::S3Vectors::Index")
    assert (len(domains), len(indexes)) == ((0, 1) if fixture.endswith("vectors") else (1, 0))


# ---------------------------------------------------------------------------------------- stateful


def test_vector_bucket_is_encrypted_unnamed_denies_plain_http_and_follows_the_removal_policy(
    vectors: Synthesized,
) -> None:
    name, bucket = one(vectors, vectors.stateful, "AWS::S3Vectors::VectorBucket")
    assert name == "VectorBucket"  # pinned
    assert bucket["Properties"]["EncryptionConfiguration"] == {"SseType": "AES256"}
    assert "VectorBucketName" not in bucket["Properties"]
    policy_kind = "Delete" if vectors.stage == "dev" else "Retain"
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == policy_kind
    _, policy = one(vectors, vectors.stateful, "AWS::S3Vectors::VectorBucketPolicy")
    arn = {"Fn::GetAtt": ["VectorBucket", "VectorBucketArn"]}
    assert policy["Properties"]["VectorBucketArn"] == arn
    (deny,) = policy["Properties"]["Policy"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3vectors:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [arn, {"Fn::Join": ["", [arn, "/*"]]}]


def test_index_has_the_adapters_definition(vectors: Synthesized) -> None:
    name, index = one(vectors, vectors.stateful, "AWS::S3Vectors::Index")
    assert name == "VectorIndex"
    props = index["Properties"]
    assert (
        props["Dimension"] == 384 and props["DistanceMetric"] == "cosine" and props["DataType"] == "float32"
    )
    assert props["MetadataConfiguration"] == {"NonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)}
    assert props["VectorBucketArn"] == {"Fn::GetAtt": ["VectorBucket", "VectorBucketArn"]}
    assert "IndexName" not in props
    assert index["DeletionPolicy"] == ("Delete" if vectors.stage == "dev" else "Retain")


def test_no_domain_no_vpc_and_the_outputs_name_the_bucket_and_index(vectors: Synthesized) -> None:
    for template in (vectors.stateful, vectors.stateless):
        types = {r["Type"] for r in template.to_json()["Resources"].values()}
        assert not {t for t in types if t.startswith(("AWS::OpenSearchService::", "AWS::EC2::"))}
        assert "Custom::OpenSearchAccess" not in types
    outputs = vectors.stateful.to_json()["Outputs"]
    assert "SearchDomainEndpoint" not in outputs
    (setup,) = vectors.resources(vectors.stateful, "Custom::S3VectorsIndexSetup")
    assert outputs["VectorBucketName"]["Value"] == {"Fn::GetAtt": [setup, "VectorBucketName"]}
    assert outputs["VectorIndexName"]["Value"] == {"Fn::GetAtt": [setup, "IndexName"]}


def test_setup_sets_mode_and_text_search_with_three_actions_on_the_index(vectors: Synthesized) -> None:
    _, setup = one(vectors, vectors.stateful, "Custom::S3VectorsIndexSetup")
    props = setup["Properties"]
    assert props["IndexArn"] == {"Fn::GetAtt": ["VectorIndex", "IndexArn"]}
    assert props["IndexMode"] == INDEX_MODE == "ENHANCED"
    assert props["TextSearchConfigurations"] == [dict(c) for c in TEXT_SEARCH]
    (grant,) = s3vectors_grants(vectors.stateful, "VectorsSetupFunctionRole")
    assert grant["Effect"] == "Allow"
    assert (
        sorted(grant["Action"])
        == sorted(SETUP_ACTIONS)
        == [
            "s3vectors:GetIndex",
            "s3vectors:UpdateIndexMode",
            "s3vectors:UpdateMetadataConfiguration",
        ]
    )
    assert grant["Resource"] == {"Fn::GetAtt": ["VectorIndex", "IndexArn"]}
    # nothing else of S3 Vectors anywhere in the stateful stack's policies
    assert s3vectors_grants(vectors.stateful, "") == [grant]


# ---------------------------------------------------------------------------------------- stateless


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        ("IngestionFunctionRole", INGEST_ACTIONS),
        ("QueryFunctionsQueryRole", QUERY_ACTIONS),
        ("QueryFunctionsHealthRole", QUERY_ACTIONS),
    ],
)
def test_each_function_may_call_exactly_its_actions_on_the_index(
    vectors: Synthesized, role: str, actions: set[str]
) -> None:
    (grant,) = s3vectors_grants(vectors.stateless, role)
    assert grant["Effect"] == "Allow" and set(grant["Action"]) == actions
    assert len(grant["Action"]) == len(actions)
    assert imported_output(vectors, grant["Resource"]) == {"Fn::GetAtt": ["VectorIndex", "IndexArn"]}
    assert set(READ_ACTIONS) | set(WRITE_ACTIONS) == INGEST_ACTIONS


def test_only_the_app_functions_have_s3vectors_grants(vectors: Synthesized) -> None:
    granted = {
        name[:20]
        for name, policy in vectors.stateless.find_resources("AWS::IAM::Policy").items()
        if s3vectors_grants(vectors.stateless, name)
    }
    assert granted == {"IngestionFunctionRol", "QueryFunctionsQueryR", "QueryFunctionsHealth"}


def test_granted_actions_take_the_index_as_their_resource_type(vectors: Synthesized) -> None:
    """cfn-lint's copy of the Service Authorization Reference: every action granted here is index-level
    (so naming the index ARN is right). UpdateMetadataConfiguration is newer than cfn-lint 1.58's copy; its
    API reference names the index too."""
    import cfnlint

    data = json.loads(
        (Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json").read_text()
    )
    known = data["s3vectors"]["Actions"]
    for action in INGEST_ACTIONS | set(SETUP_ACTIONS):
        name = action.split(":", 1)[1].lower()
        if name == "updatemetadataconfiguration" and name not in known:
            continue
        assert known[name]["Resources"] == ["Index"], action


def test_functions_find_the_store_in_their_environment(vectors: Synthesized) -> None:
    (setup,) = vectors.resources(vectors.stateful, "Custom::S3VectorsIndexSetup")
    functions = vectors.resources(vectors.stateless, "AWS::Lambda::Function")
    app = {k: v for k, v in functions.items() if k.startswith(("Ingestion", "QueryFunctions"))}
    assert len(app) == 3
    for function in app.values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["RAG_EXPLORER_STORE"] == "s3vectors"
        bucket = imported_output(vectors, env["RAG_EXPLORER_S3VECTORS_BUCKET"])
        index = imported_output(vectors, env["RAG_EXPLORER_S3VECTORS_INDEX"])
        assert (bucket, index) == (
            {"Fn::GetAtt": [setup, "VectorBucketName"]},
            {"Fn::GetAtt": [setup, "IndexName"]},
        )
        assert not [k for k in env if k.startswith("RAG_EXPLORER_OPENSEARCH")]
        assert "VpcConfig" not in function["Properties"]


def test_monitoring_has_no_cluster_alarms_or_widget(vectors: Synthesized) -> None:
    alarms = vectors.resources(vectors.stateless, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 6
    assert not [k for k in alarms if "Cluster" in k]
    (dashboard,) = vectors.resources(vectors.stateless, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "OpenSearch" not in body and "AWS/ES" not in body
    assert "Ingest queue and dead-letter queue" in body


# ---------------------------------------------------------------------------------------- nag and lint


def test_cdk_nag_is_clean(vectors: Synthesized) -> None:
    assert vectors.error is None, vectors.error
    assert violations(vectors.outdir) == []
    for ack in nag_acknowledgments(vectors):
        assert len(ack.reason) >= 40, ack
    # the setup's provider: the same two acknowledgments as the OpenSearch bootstrap's
    setup_acks = sorted(
        a.rule_id.split("[")[0] for a in nag_acknowledgments(vectors) if "/Vectors/" in a.path + "/"
    )
    assert setup_acks == ["AwsSolutions-IAM4", "AwsSolutions-IAM5", "AwsSolutions-L1"]


@pytest.mark.parametrize("stage_name", ["dev", "prod"])
def test_every_acknowledgment_matches_a_finding(
    stage_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Recorder.recorded = []
    monkeypatch.setattr(infra.nag, "Validations", _Recorder)
    bare = synthesize(stage_name, tmp_path, config=stage_config(stage_name, store="s3vectors"))
    assert bare.error is not None
    found = violations(tmp_path)
    unused = [
        (path, rule)
        for path, rule in _Recorder.recorded
        if not any(r == rule and (p == path or p.startswith(path + "/")) for r, p in found)
    ]
    assert unused == []


def test_cfn_lint_has_no_errors(vectors: Synthesized) -> None:
    templates = vectors.template_files()
    assert len(templates) == 2
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 4, 8, 12), result.stderr[-2000:]
    errors = [f for f in json.loads(result.stdout) if f["Level"] == "Error"]
    assert errors == [], json.dumps(errors, indent=1)[:4000]
