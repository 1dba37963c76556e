"""The stack template instantiated on a loopback moto server through CloudFormation's
create_stack, twice: as the bootstrap deploy (no image, private subnets) and as a running one
(image, certificate, public subnets, alarm e-mail).

moto builds most resources; those it skips (MOTO_SKIPS) and the properties it accepts but does
not model (MOTO_IGNORES) are checked where they are declared, in test_cloudformation.py."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.infra.common import template

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")

REGION = "us-east-1"
# Resource types moto 5.2's CloudFormation does not implement: it warns and skips them.
MOTO_SKIPS = {
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::IAM::OIDCProvider",
    "AWS::S3::BucketPolicy",
    "AWS::SecretsManager::Secret",
    "AWS::SNS::Subscription",
}
# Properties moto accepts and drops (the resource exists, with defaults in their place).
MOTO_IGNORES = {
    "LoadBalancer": ["LoadBalancerAttributes"],
    "AppTargetGroup": ["TargetGroupAttributes"],
    "ApiTargetGroup": ["TargetGroupAttributes"],
    "Bucket": [
        "VersioningConfiguration",
        "PublicAccessBlockConfiguration",
        "OwnershipControls",
        "LifecycleConfiguration",
    ],
    "Repository": ["ImageScanningConfiguration", "LifecyclePolicy"],
}
# moto implements dashboards but cannot resolve Fn::GetAtt TargetGroup.TargetGroupFullName in
# the dashboard body (it fails the whole stack), so the dashboard is left out here.
LEFT_OUT = {"Dashboard"}

BOOTSTRAP = {"ProjectName": "dltest-boot", "GitHubRepository": "acme/dishlens"}
CONDITIONS_BOOTSTRAP = {"UsePrivateSubnets": True, "CreateOidcProvider": True}
LIVE = {
    "ProjectName": "dltest-live",
    "GitHubRepository": "acme/dishlens",
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/dltest-live:0123abcd",
    "ModelUri": "s3://models-elsewhere/models/food10-lite0/v1/",
    "TasksInPublicSubnets": "true",
    "AlarmEmail": "ops@example.com",
    "LlmModel": "meta-llama/Llama-3.1-8B-Instruct",
    "DesiredTasks": "2",
}
CONDITIONS_LIVE = {
    "HasImage": True,
    "HasModelUri": True,
    "HasCertificate": True,
    "HasAlarmEmail": True,
    "HasLlmModel": True,
    "CreateOidcProvider": True,
}

Clients = Callable[[str], Any]


@pytest.fixture(scope="module")
def clients(moto_server: str) -> Clients:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=moto_server,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client


def create_stack(clients: Clients, name: str, parameters: dict[str, str]) -> dict[str, Any]:
    """Create the stack on moto; returns ``{"stack": ..., "resources": {logical id: summary}}``."""
    body = dict(template())
    body["Resources"] = {k: v for k, v in body["Resources"].items() if k not in LEFT_OUT}
    body["Outputs"] = {k: v for k, v in body["Outputs"].items() if k != "DashboardName"}
    cloudformation = clients("cloudformation")
    with warnings.catch_warnings():  # "Tried to parse ... not supported by moto"
        warnings.simplefilter("ignore", UserWarning)
        cloudformation.create_stack(
            StackName=name,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    summaries = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    created = {s["LogicalResourceId"]: s for s in summaries if s["LogicalResourceId"]}
    return {"stack": stack, "resources": created}


def expected_resources(true_conditions: dict[str, bool]) -> set[str]:
    """The resources moto should create when the named conditions hold (and no others)."""
    return {
        name
        for name, resource in template()["Resources"].items()
        if true_conditions.get(resource.get("Condition"), "Condition" not in resource)
        and resource["Type"] not in MOTO_SKIPS
        and name not in LEFT_OUT
    }


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.fixture(scope="module")
def bootstrap(clients: Clients) -> dict[str, Any]:
    return create_stack(clients, "dltest-boot", BOOTSTRAP)


@pytest.fixture(scope="module")
def live(clients: Clients) -> dict[str, Any]:
    certificate = clients("acm").request_certificate(DomainName="dishlens.example.com")
    return create_stack(
        clients, "dltest-live", {**LIVE, "CertificateArn": certificate["CertificateArn"]}
    )


def test_bootstrap_stack_creates_every_resource_moto_supports(bootstrap):
    assert bootstrap["stack"]["StackStatus"] == "CREATE_COMPLETE"
    assert set(bootstrap["resources"]) == expected_resources(CONDITIONS_BOOTSTRAP)
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in bootstrap["resources"].values())


def test_moto_skips_only_the_listed_types():
    kinds = {r["Type"] for r in template()["Resources"].values()}
    assert kinds >= MOTO_SKIPS  # the list names real resources of this template


def test_bootstrap_network_has_private_subnets_behind_one_nat(clients, bootstrap):
    ec2 = clients("ec2")
    vpc_id = bootstrap["resources"]["Vpc"]["PhysicalResourceId"]
    (vpc,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert len(subnets) == 4
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    gateways = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    assert len(gateways["NatGateways"]) == 1


def test_bootstrap_services_run_no_tasks_yet(clients, bootstrap):
    values = outputs(bootstrap["stack"])
    services = clients("ecs").describe_services(
        cluster=values["ClusterName"],
        services=[values["AppServiceName"], values["ApiServiceName"]],
    )["services"]
    assert [s["desiredCount"] for s in services] == [0, 0]
    repository = values["RepositoryUri"]
    task = clients("ecs").describe_task_definition(taskDefinition="dltest-boot-app")
    assert task["taskDefinition"]["containerDefinitions"][0]["image"] == f"{repository}:bootstrap"


def test_tasks_are_reachable_from_the_load_balancer_only(clients, bootstrap):
    ec2 = clients("ec2")
    alb_group = bootstrap["resources"]["AlbSecurityGroup"]["PhysicalResourceId"]
    task_group = bootstrap["resources"]["TaskSecurityGroup"]["PhysicalResourceId"]
    (group,) = ec2.describe_security_groups(GroupIds=[task_group])["SecurityGroups"]
    assert {p["FromPort"] for p in group["IpPermissions"]} == {8000, 8501}
    for permission in group["IpPermissions"]:
        assert permission["IpRanges"] == []
        assert [pair["GroupId"] for pair in permission["UserIdGroupPairs"]] == [alb_group]


def test_load_balancer_target_groups_and_api_rule(clients, bootstrap):
    elb = clients("elbv2")
    balancer = bootstrap["resources"]["LoadBalancer"]["PhysicalResourceId"]
    # moto ignores LoadBalancerAttributes (idle timeout): test_cloudformation.py checks it.
    app_group = bootstrap["resources"]["AppTargetGroup"]["PhysicalResourceId"]
    api_group = bootstrap["resources"]["ApiTargetGroup"]["PhysicalResourceId"]
    groups = {
        g["TargetGroupArn"]: g
        for g in elb.describe_target_groups(TargetGroupArns=[app_group, api_group])["TargetGroups"]
    }
    assert (groups[app_group]["Port"], groups[app_group]["HealthCheckPath"]) == (
        8501,
        "/_stcore/health",
    )
    assert (groups[api_group]["Port"], groups[api_group]["HealthCheckPath"]) == (8000, "/readyz")

    (listener,) = elb.describe_listeners(LoadBalancerArn=balancer)["Listeners"]
    assert listener["Port"] == 80
    assert listener["DefaultActions"][0]["Type"] == "forward"
    rules = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    (api_rule,) = [r for r in rules if not r["IsDefault"]]
    assert api_rule["Actions"][0]["TargetGroupArn"] == api_group
    patterns = api_rule["Conditions"][0]["PathPatternConfig"]["Values"]
    # moto resolves a CommaDelimitedList Ref to the raw string, then lists its characters.
    assert "".join(patterns) == template()["Parameters"]["ApiPathPatterns"]["Default"]


def test_bucket_and_repository_exist_with_immutable_tags(clients, bootstrap):
    bucket = outputs(bootstrap["stack"])["BucketName"]
    assert clients("s3").head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    (repository,) = clients("ecr").describe_repositories(repositoryNames=["dltest-boot"])[
        "repositories"
    ]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert outputs(bootstrap["stack"])["RepositoryUri"] == repository["repositoryUri"]


def test_moto_ignores_only_properties_the_template_sets():
    for name, properties in MOTO_IGNORES.items():
        assert set(properties) <= set(template()["Resources"][name]["Properties"])


def test_deploy_role_and_log_retention(clients, bootstrap):
    role_name = bootstrap["resources"]["DeployRole"]["PhysicalResourceId"]
    role = clients("iam").get_role(RoleName=role_name)["Role"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    subject = statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subject == "repo:acme/dishlens:environment:production:ref:refs/heads/main"
    (group,) = clients("logs").describe_log_groups(logGroupNamePrefix="/ecs/dltest-boot")[
        "logGroups"
    ]
    assert group["retentionInDays"] == 30


def test_live_stack_runs_the_image_with_https_and_public_subnets(clients, live):
    assert live["stack"]["StackStatus"] == "CREATE_COMPLETE"
    assert set(live["resources"]) == expected_resources(CONDITIONS_LIVE)
    values = outputs(live["stack"])
    assert values["LoadBalancerUrl"].startswith("https://")

    ecs = clients("ecs")
    services = ecs.describe_services(
        cluster=values["ClusterName"], services=[values["AppServiceName"], values["ApiServiceName"]]
    )["services"]
    assert [s["desiredCount"] for s in services] == [2, 1]
    app = ecs.describe_task_definition(taskDefinition="dltest-live-app")["taskDefinition"]
    (container,) = app["containerDefinitions"]
    assert container["image"] == LIVE["ImageUri"]
    assert container["readonlyRootFilesystem"] is True
    environment = {e["name"]: e["value"] for e in container["environment"] if e}
    assert environment["FEEDBACK_URI"] == f"s3://{values['BucketName']}/feedback/"
    assert environment["MODEL_URI"] == LIVE["ModelUri"]
    assert environment["LLM_MODEL"] == LIVE["LlmModel"]
    assert "HF_TOKEN" not in environment
    api = ecs.describe_task_definition(taskDefinition="dltest-live-api")["taskDefinition"]
    assert api["containerDefinitions"][0]["command"][:2] == ["uvicorn", "api.main:app"]

    vpc_id = live["resources"]["Vpc"]["PhysicalResourceId"]
    ec2 = clients("ec2")
    assert (
        len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]) == 2
    )
    nat = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    assert nat["NatGateways"] == []


def test_live_listeners_redirect_http_to_https(clients, live):
    elb = clients("elbv2")
    balancer = live["resources"]["LoadBalancer"]["PhysicalResourceId"]
    listeners = {
        x["Port"]: x for x in elb.describe_listeners(LoadBalancerArn=balancer)["Listeners"]
    }
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    assert listeners[80]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    assert listeners[443]["Protocol"] == "HTTPS"
    rules = elb.describe_rules(ListenerArn=listeners[443]["ListenerArn"])["Rules"]
    assert any(not r["IsDefault"] for r in rules)  # the API rule sits on the HTTPS listener
