"""Retraining on SageMaker: the image the job runs holds what its entrypoint needs; the roles in
the stack template, what a training job may touch (TrainingRole) and what the retrain workflow
may do (RetrainRole), read where they are declared and created on moto."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from typing import Any

import pytest

from tests.infra.common import ROOT, as_list, env, image, props, stage, template, user
from tests.infra.test_cloudformation import iam_statements
from tests.infra.test_cloudformation_moto import clients, create_stack, outputs

__all__ = ["clients"]  # the moto clients fixture, shared with test_cloudformation_moto.py

BUCKET_ARN = {"Fn::GetAtt": ["Bucket", "Arn"]}


def test_the_image_runs_the_training_entrypoint_from_the_model_it_serves():
    from tests.scripts.conftest import load_script

    retraining = load_script("start_retraining")
    builder, training = stage("builder"), image("training")
    assert ("COPY", "classifier/ classifier/") in builder  # classifier.train is in the image
    workdir = [rest for word, rest in training if word == "WORKDIR"][-1]
    assert ("COPY", "${MODEL_DIR}/ model/") in builder
    assert retraining.RetrainingJob.base_model == f"{workdir}/model"  # the model it serves
    # `python3 -m classifier.train` from the working directory, with the venv's python3.
    assert retraining.ENTRYPOINT == ["python3", "-m", "classifier.train"]
    assert env("training")["PATH"].startswith("/opt/venv/bin:")
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==", requirements, re.M)  # installed by the builder, CPU wheels


def test_the_job_runs_as_root_so_it_can_write_sagemakers_root_owned_mounts():
    # SageMaker mounts /opt/ml/model (MODEL_OUT) owned by root and runs the image's USER.
    from tests.scripts.conftest import load_script

    retraining = load_script("start_retraining")
    assert retraining.MODEL_OUT == "/opt/ml/model"
    assert user("training").split(":")[0] in {"root", "0"}
    assert user().split(":")[0] not in {"root", "0"}  # the app image stays unprivileged
    assert retraining.TRAINING_TAG_SUFFIX == "-training"  # what deploy.yml pushes


def test_the_repository_keeps_the_training_variant_of_every_release_it_keeps():
    # Each release pushes its app image, then TAG-training. One count over both, oldest
    # expired first: a release at the edge loses its app image before its training variant.
    policy = json.loads(props("Repository")["LifecyclePolicy"]["LifecyclePolicyText"])
    (count,) = [
        rule["selection"]
        for rule in policy["rules"]
        if rule["selection"]["countType"] == "imageCountMoreThan"
    ]
    assert count["tagStatus"] == "any" and "tagPatternList" not in count
    assert count["countNumber"] == 2 * 30  # 30 releases, two images each


JOBS = (
    "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/${ProjectName}-*"
)
LOGS = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/"


def grants(role: str) -> dict[str, list[tuple[Any, Any]]]:
    """``{action: [(resource, condition), ...]}`` for one role."""
    found: dict[str, list[tuple[Any, Any]]] = {}
    for r, statement in iam_statements():
        if r == role:
            for action in as_list(statement["Action"]):
                found.setdefault(action, []).append(
                    (statement["Resource"], statement.get("Condition"))
                )
    return found


def objects(*prefixes: str) -> list[dict[str, str]]:
    return [{"Fn::Sub": f"${{Bucket.Arn}}/{prefix}/*"} for prefix in prefixes]


def test_training_jobs_read_the_photos_and_answers_and_write_only_their_output():
    role = grants("TrainingRole")
    assert role["s3:GetObject"] == [(objects("datasets", "feedback"), None)]
    assert role["s3:ListBucket"] == [
        (BUCKET_ARN, {"StringLike": {"s3:prefix": ["datasets/*", "feedback/*"]}})
    ]
    assert role["s3:PutObject"] == [(objects("training")[0], None)]
    assert not any(
        a.startswith("s3:") and a not in {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
        for a in role
    )


def test_training_jobs_pull_only_this_repository_and_write_only_their_own_logs():
    role = grants("TrainingRole")
    repository = {"Fn::GetAtt": ["Repository", "Arn"]}
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
        assert role[action] == [(repository, None)]
    assert role["logs:PutLogEvents"] == [
        ({"Fn::Sub": LOGS + "TrainingJobs:log-stream:${ProjectName}-*"}, None)
    ]
    assert role["logs:CreateLogStream"] == [({"Fn::Sub": LOGS + "TrainingJobs"}, None)]
    assert role["cloudwatch:PutMetricData"] == [
        ("*", {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}})
    ]
    assert sorted(role) == sorted(
        [
            "cloudwatch:PutMetricData",
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetAuthorizationToken",
            "ecr:GetDownloadUrlForLayer",
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
        ]
    )


def test_only_sagemaker_in_this_account_assumes_the_training_role():
    (statement,) = props("TrainingRole")["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }


def test_the_retrain_role_starts_only_this_projects_jobs_without_network():
    role = grants("RetrainRole")
    jobs = {"Fn::Sub": JOBS}
    assert role["sagemaker:CreateTrainingJob"] == [
        (jobs, {"Bool": {"sagemaker:NetworkIsolation": "true"}})
    ]
    assert role["sagemaker:DescribeTrainingJob"] == [(jobs, None)]
    assert role["sagemaker:StopTrainingJob"] == [(jobs, None)]
    assert role["iam:PassRole"] == [
        (
            {"Fn::GetAtt": ["TrainingRole", "Arn"]},
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    ]
    assert role["cloudformation:DescribeStacks"] == [({"Ref": "AWS::StackId"}, None)]
    assert not any(a.startswith(("ecs:", "ecr:", "cloudformation:Update")) for a in role)


def test_the_retrain_role_reads_what_the_gate_needs_and_writes_only_the_registry():
    role = grants("RetrainRole")
    assert role["s3:GetObject"] == [(objects("training", "datasets", "models"), None)]
    assert role["s3:PutObject"] == [(objects("models")[0], None)]
    assert role["s3:ListBucket"] == [
        (BUCKET_ARN, {"StringLike": {"s3:prefix": ["datasets/*", "models/*", "feedback/*"]}})
    ]
    assert sorted(a for a in role if a.startswith("s3:")) == [
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
    ]


def test_only_the_main_branch_in_the_retrain_environment_assumes_the_retrain_role():
    role = props("RetrainRole")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    claims = statement["Condition"]["StringEquals"]
    assert set(statement["Condition"]) == {"StringEquals"}
    assert claims["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert claims["token.actions.githubusercontent.com:sub"] == {
        "Fn::Sub": "repo:${GitHubRepository}:environment:${GitHubRetrainEnvironment}"
        ":ref:refs/heads/main"
    }
    assert template()["Parameters"]["GitHubRetrainEnvironment"]["Default"] == "retrain"
    # It waits for the job with the credentials it got at the start: GitHub's 6-hour limit.
    assert role["MaxSessionDuration"] == 6 * 3600


def test_outputs_name_both_retraining_roles():
    outputs = template()["Outputs"]
    assert outputs["TrainingRoleArn"]["Value"] == {"Fn::GetAtt": ["TrainingRole", "Arn"]}
    assert outputs["RetrainRoleArn"]["Value"] == {"Fn::GetAtt": ["RetrainRole", "Arn"]}


# ---------------------------------------------------------------------------------------------
# On moto: the stack creates both roles, and the job scripts/start_retraining.py starts with the
# stack's outputs is one the retrain role's policy names.

TRAIN_STACK = {
    "ProjectName": "dltest-train",
    "GitHubRepository": "acme/dishlens",
    "AllowPlainHttp": "true",
    "TasksInPublicSubnets": "true",
}


@pytest.fixture(scope="module")
def train_stack(clients) -> dict[str, Any]:
    return create_stack(clients, "dltest-train", TRAIN_STACK)


def role_policy(clients, stack: dict[str, Any], role: str) -> tuple[dict, list[dict]]:
    """The role moto created: its trust policy and its one inline policy's statements."""
    iam = clients("iam")
    name = stack["resources"][role]["PhysicalResourceId"]
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    (policy,) = iam.list_role_policies(RoleName=name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    if isinstance(document, str):
        # moto's CloudFormation stores a role's inline policy as the Python repr of the dict.
        document = ast.literal_eval(document)
    return trust, document["Statement"]


def test_the_stack_on_moto_creates_both_roles_with_their_policies(clients, train_stack):
    bucket = outputs(train_stack["stack"])["BucketName"]
    trust, statements = role_policy(clients, train_stack, "TrainingRole")
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    writes = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert [s["Resource"] for s in writes] == [f"arn:aws:s3:::{bucket}/training/*"]
    trust, statements = role_policy(clients, train_stack, "RetrainRole")
    subject = trust["Statement"][0]["Condition"]["StringEquals"]
    assert subject["token.actions.githubusercontent.com:sub"] == (
        "repo:acme/dishlens:environment:retrain:ref:refs/heads/main"
    )
    passes = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert [s["Resource"] for s in passes] == [outputs(train_stack["stack"])["TrainingRoleArn"]]


def test_the_job_started_with_the_stacks_outputs_is_one_the_retrain_role_may_start(
    aws, clients, train_stack
):
    from tests.scripts.conftest import load_script

    retraining = load_script("start_retraining")
    values = outputs(train_stack["stack"])
    name = retraining.job_name("dltest-train")
    job = retraining.RetrainingJob(
        name=name,
        image=values["RepositoryUri"] + ":0123abcd-4567ef",
        role_arn=values["TrainingRoleArn"],
        data=f"s3://{values['BucketName']}/datasets/food101/",
        output=f"s3://{values['BucketName']}/training/",
    )
    arn = retraining.start(job)
    described = clients("sagemaker").describe_training_job(TrainingJobName=name)
    assert described["RoleArn"] == values["TrainingRoleArn"]
    _, statements = role_policy(clients, train_stack, "RetrainRole")
    (create,) = [s for s in statements if s["Action"] == "sagemaker:CreateTrainingJob"]
    assert fnmatch.fnmatchcase(arn, create["Resource"])
    assert described["EnableNetworkIsolation"] is (
        create["Condition"]["Bool"]["sagemaker:NetworkIsolation"] == "true"
    )
    prefix = create["Resource"].rsplit("/", 1)[0] + "/"
    assert not fnmatch.fnmatchcase(prefix + "other-retrain-1", create["Resource"])
