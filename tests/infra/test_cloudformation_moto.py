"""The stack template instantiated on a loopback moto server through CloudFormation's
create_stack, three times: as the bootstrap deploy (certificate, no image, private subnets
behind a NAT gateway per AZ), as a running one (image, certificate with its own domain and
Route 53 record, sign-in, API key, interface endpoints, one NAT gateway, alarm e-mail) and as
the explicit plain-HTTP test stack (public subnets).

moto builds most resources; those it skips (MOTO_SKIPS) and the properties it accepts but does
not model (MOTO_IGNORES) are checked where they are declared, in test_cloudformation.py."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from tests.infra.common import props, template

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
    "AWS::SNS::TopicPolicy",
    "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation",
    "AWS::WAFv2::LoggingConfiguration",
    "AWS::CertificateManager::Certificate",
}
# Properties moto accepts and drops (the resource exists, with defaults in their place).
MOTO_IGNORES = {
    "LoadBalancer": ["LoadBalancerAttributes"],
    "HttpsListener": ["ListenerAttributes"],
    "AccessLogBucket": [
        "PublicAccessBlockConfiguration",
        "OwnershipControls",
        "LifecycleConfiguration",
    ],
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
# the dashboard body (it fails the whole stack), so the dashboard is left out here. Outputs
# that read an attribute of a skipped resource fail moto's output check: left out too.
LEFT_OUT = {"Dashboard"}
LEFT_OUT_OUTPUTS = {"DashboardName", "WebAclArn"}
# moto cannot issue an ACM certificate through CloudFormation (AWS::CertificateManager::
# Certificate): the stacks here bring one, requested from moto's ACM.

BOOTSTRAP = {"ProjectName": "dltest-boot", "GitHubRepository": "acme/dishlens"}
CONDITIONS_BOOTSTRAP = {
    "UsePrivateSubnets": True,
    "TwoNats": True,
    "HasCertificateArn": True,
    "HasTls": True,
    "CreateOidcProvider": True,
}
API_KEY = "k" * 40
LIVE = {
    "ProjectName": "dltest-live",
    "GitHubRepository": "acme/dishlens",
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/dltest-live:0123abcd",
    "ModelUri": "s3://models-elsewhere/models/food10-lite0/v1/",
    "DomainName": "dishlens.example.com",
    "NatGateways": "1",
    "InterfaceEndpoints": "true",
    "OidcIssuer": "https://idp.example.com",
    "OidcClientId": "dishlens",
    "ApiKey": API_KEY,
    "AlarmEmail": "ops@example.com",
    "LlmModel": "meta-llama/Llama-3.1-8B-Instruct",
    "DesiredTasks": "3",
}
CONDITIONS_LIVE = {
    "HasImage": True,
    "ApiRuns": True,
    "HasModelUri": True,
    "HasCertificateArn": True,
    "HasDomain": True,
    "HasDnsZone": True,
    "HasTls": True,
    "HasSignIn": True,
    "HasApiKey": True,
    "UsePrivateSubnets": True,
    "UseEndpoints": True,
    "HasAlarmEmail": True,
    "HasLlmModel": True,
    "CreateOidcProvider": True,
}
PLAIN = {
    "ProjectName": "dltest-plain",
    "GitHubRepository": "acme/dishlens",
    "AllowPlainHttp": "true",
    "TasksInPublicSubnets": "true",
}
CONDITIONS_PLAIN = {"CreateOidcProvider": True}

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
    body["Outputs"] = {k: v for k, v in body["Outputs"].items() if k not in LEFT_OUT_OUTPUTS}
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


def certificate(clients: Clients) -> str:
    return clients("acm").request_certificate(DomainName="dishlens.example.com")["CertificateArn"]


@pytest.fixture(scope="module")
def bootstrap(clients: Clients) -> dict[str, Any]:
    return create_stack(
        clients, "dltest-boot", {**BOOTSTRAP, "CertificateArn": certificate(clients)}
    )


@pytest.fixture(scope="module")
def live(clients: Clients) -> dict[str, Any]:
    zone = clients("route53").create_hosted_zone(Name="example.com", CallerReference="dltest")
    parameters = {
        **LIVE,
        "CertificateArn": certificate(clients),
        "HostedZoneId": zone["HostedZone"]["Id"].rsplit("/", 1)[-1],
    }
    return create_stack(clients, "dltest-live", parameters)


@pytest.fixture(scope="module")
def plain(clients: Clients) -> dict[str, Any]:
    return create_stack(clients, "dltest-plain", PLAIN)


def test_bootstrap_stack_creates_every_resource_moto_supports(bootstrap):
    assert bootstrap["stack"]["StackStatus"] == "CREATE_COMPLETE"
    assert set(bootstrap["resources"]) == expected_resources(CONDITIONS_BOOTSTRAP)
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in bootstrap["resources"].values())


def test_moto_skips_only_the_listed_types():
    kinds = {r["Type"] for r in template()["Resources"].values()}
    assert kinds >= MOTO_SKIPS  # the list names real resources of this template


def subnet_zones(ec2: Any, vpc_id: str) -> dict[str, str]:
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    return {s["SubnetId"]: s["AvailabilityZone"] for s in subnets}


def test_bootstrap_private_subnets_leave_through_the_nat_gateway_of_their_own_zone(
    clients, bootstrap
):
    ec2 = clients("ec2")
    vpc_id = bootstrap["resources"]["Vpc"]["PhysicalResourceId"]
    (vpc,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    zones = subnet_zones(ec2, vpc_id)
    assert len(zones) == 4 and len(set(zones.values())) == 2
    gateways = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    nat_zone = {g["NatGatewayId"]: zones[g["SubnetId"]] for g in gateways["NatGateways"]}
    assert sorted(nat_zone.values()) == sorted(set(zones.values()))  # one in each zone
    for i in (1, 2):
        subnet = bootstrap["resources"][f"PrivateSubnet{i}"]["PhysicalResourceId"]
        table = bootstrap["resources"][f"PrivateRouteTable{i}"]["PhysicalResourceId"]
        # moto records a subnet association under its route table's id (and lists no
        # associations); which subnet uses which table is checked in test_cloudformation.py.
        assert bootstrap["resources"][f"PrivateSubnet{i}Routes"]["PhysicalResourceId"] == table
        (routes,) = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]
        (default,) = [r for r in routes["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        assert nat_zone[default["NatGatewayId"]] == zones[subnet]


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
    assert (groups[api_group]["Port"], groups[api_group]["HealthCheckPath"]) == (8000, "/startupz")

    listeners = {
        x["Port"]: x for x in elb.describe_listeners(LoadBalancerArn=balancer)["Listeners"]
    }
    assert listeners[80]["DefaultActions"] == [
        {
            "Type": "redirect",
            "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
        }
    ]
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["DefaultActions"][0]["Type"] == "forward"  # no sign-in by default
    assert elb.describe_rules(ListenerArn=listeners[80]["ListenerArn"])["Rules"][0]["IsDefault"]
    rules = elb.describe_rules(ListenerArn=listeners[443]["ListenerArn"])["Rules"]
    (api_rule,) = [r for r in rules if not r["IsDefault"]]
    assert api_rule["Actions"][0]["TargetGroupArn"] == api_group
    (paths,) = api_rule["Conditions"]  # no API key by default
    # moto resolves a CommaDelimitedList Ref to the raw string, then lists its characters.
    patterns = paths["PathPatternConfig"]["Values"]
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


def test_live_stack_runs_two_zones_of_tasks_with_the_image_behind_its_domain(clients, live):
    assert live["stack"]["StackStatus"] == "CREATE_COMPLETE"
    assert set(live["resources"]) == expected_resources(CONDITIONS_LIVE)
    values = outputs(live["stack"])
    assert values["LoadBalancerUrl"] == f"https://{LIVE['DomainName']}"

    ecs = clients("ecs")
    services = ecs.describe_services(
        cluster=values["ClusterName"], services=[values["AppServiceName"], values["ApiServiceName"]]
    )["services"]
    assert [s["desiredCount"] for s in services] == [3, 2]  # DesiredTasks; ApiMinTasks default
    app = ecs.describe_task_definition(taskDefinition="dltest-live-app")["taskDefinition"]
    (container,) = app["containerDefinitions"]
    assert container["image"] == LIVE["ImageUri"]
    assert container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"] == {
        "capabilities": {"drop": ["ALL"]},
        "initProcessEnabled": True,
    }
    environment = {e["name"]: e["value"] for e in container["environment"] if e}
    assert environment["FEEDBACK_URI"] == f"s3://{values['BucketName']}/feedback/"
    assert environment["MODEL_URI"] == LIVE["ModelUri"]
    assert environment["LLM_MODEL"] == LIVE["LlmModel"]
    assert "HF_TOKEN" not in environment
    api = ecs.describe_task_definition(taskDefinition="dltest-live-api")["taskDefinition"]
    command = api["containerDefinitions"][0]["command"]
    assert command[:2] == ["uvicorn", "api.main:app"]
    assert int(command[command.index("--timeout-keep-alive") + 1]) > 3600

    zone = live["resources"]["DnsRecord"]
    assert zone["ResourceStatus"] == "CREATE_COMPLETE"
    balancer = live["resources"]["LoadBalancer"]["PhysicalResourceId"]
    (described,) = clients("elbv2").describe_load_balancers(LoadBalancerArns=[balancer])[
        "LoadBalancers"
    ]
    records = clients("route53").list_resource_record_sets(HostedZoneId=zone_id(clients))
    (alias,) = [r for r in records["ResourceRecordSets"] if r["Type"] == "A"]
    assert alias["Name"].rstrip(".") == LIVE["DomainName"]
    assert alias["AliasTarget"]["DNSName"].rstrip(".") == described["DNSName"]


def zone_id(clients) -> str:
    (zone,) = clients("route53").list_hosted_zones_by_name(DNSName="example.com")["HostedZones"]
    return zone["Id"].rsplit("/", 1)[-1]


def test_live_sign_in_guards_the_app_and_the_api_wants_its_key(clients, live):
    elb = clients("elbv2")
    balancer = live["resources"]["LoadBalancer"]["PhysicalResourceId"]
    listeners = {
        x["Port"]: x for x in elb.describe_listeners(LoadBalancerArn=balancer)["Listeners"]
    }
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    https = listeners[443]
    assert [a["Type"] for a in https["DefaultActions"]] == ["authenticate-oidc", "forward"]
    assert https["DefaultActions"][0]["AuthenticateOidcConfig"]["Issuer"] == LIVE["OidcIssuer"]
    rules = {
        r["Priority"]: r
        for r in elb.describe_rules(ListenerArn=https["ListenerArn"])["Rules"]
        if not r["IsDefault"]
    }
    health, keyed, refused = (rules[str(p)] for p in (5, 10, 20))
    assert health["Conditions"][0]["PathPatternConfig"]["Values"] == ["/_stcore/health"]
    assert health["Actions"][0]["Type"] == "forward"  # no sign-in for the health path
    header = [c for c in keyed["Conditions"] if c["Field"] == "http-header"]
    assert header == [
        {
            "Field": "http-header",
            "HttpHeaderConfig": {"HttpHeaderName": "X-Api-Key", "Values": [API_KEY]},
        }
    ]
    api_group = live["resources"]["ApiTargetGroup"]["PhysicalResourceId"]
    assert keyed["Actions"][0]["TargetGroupArn"] == api_group
    assert refused["Actions"][0]["Type"] == "fixed-response"
    assert refused["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "401"


def test_live_tasks_reach_ecr_logs_and_secrets_through_interface_endpoints(clients, live):
    ec2 = clients("ec2")
    vpc_id = live["resources"]["Vpc"]["PhysicalResourceId"]
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    kinds = {e["ServiceName"].split("us-east-1.")[1]: e for e in endpoints["VpcEndpoints"]}
    assert set(kinds) == {"s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager"}
    private = {live["resources"][f"PrivateSubnet{i}"]["PhysicalResourceId"] for i in (1, 2)}
    for name in ("ecr.api", "ecr.dkr", "logs", "secretsmanager"):
        assert kinds[name]["VpcEndpointType"] == "Interface"
        assert set(kinds[name]["SubnetIds"]) == private
    nat = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    assert len(nat["NatGateways"]) == 1  # NatGateways=1


def test_failed_deployments_of_both_services_go_to_the_alarm_topic(clients, live):
    events = clients("events")
    name = live["resources"]["DeploymentFailedRule"]["PhysicalResourceId"]
    rule = events.describe_rule(Name=name)
    pattern = json.loads(rule["EventPattern"])
    values = outputs(live["stack"])
    services = clients("ecs").describe_services(
        cluster=values["ClusterName"], services=[values["AppServiceName"], values["ApiServiceName"]]
    )["services"]
    assert pattern["resources"] == [s["serviceArn"] for s in services]
    assert pattern["detail"] == {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]}
    (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
    assert target["Arn"] == values["AlarmTopicArn"]


def test_plain_http_stack_forwards_port_80_and_has_no_https_listener(clients, plain):
    assert plain["stack"]["StackStatus"] == "CREATE_COMPLETE"
    assert set(plain["resources"]) == expected_resources(CONDITIONS_PLAIN)
    assert outputs(plain["stack"])["LoadBalancerUrl"].startswith("http://")
    elb = clients("elbv2")
    balancer = plain["resources"]["LoadBalancer"]["PhysicalResourceId"]
    (listener,) = elb.describe_listeners(LoadBalancerArn=balancer)["Listeners"]
    assert (listener["Port"], listener["DefaultActions"][0]["Type"]) == (80, "forward")
    vpc_id = plain["resources"]["Vpc"]["PhysicalResourceId"]
    ec2 = clients("ec2")
    assert len(subnet_zones(ec2, vpc_id)) == 2  # public subnets only
    assert (
        ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
        == []
    )


def resolve(value: Any, known: dict[str, Any]) -> Any:
    """The template's Ref, Fn::Sub and Fn::GetAtt resolved from ``known`` (parameter values,
    pseudo parameters, physical ids and attributes as ``"Name.Attribute"``)."""
    if isinstance(value, list):
        return [resolve(item, known) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return known[value["Ref"]]
    if set(value) == {"Fn::GetAtt"}:
        return known[".".join(value["Fn::GetAtt"])]
    if set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(known[m[1]]), value["Fn::Sub"])
    return {key: resolve(item, known) for key, item in value.items()}


def parameter_values(given: dict[str, str]) -> dict[str, Any]:
    """Every parameter as CloudFormation would pass it: given or default, numbers as numbers."""
    values = {}
    for name, parameter in template()["Parameters"].items():
        raw = given.get(name, parameter.get("Default", ""))
        values[name] = int(raw) if parameter["Type"] == "Number" else raw
    return values


def test_live_web_acl_fits_the_wafv2_api_and_guards_the_load_balancer(clients, live):
    # moto's CloudFormation skips AWS::WAFv2::*: the same properties go through the WAFv2 API
    # instead, where botocore checks them against the API's request model.
    balancer = live["resources"]["LoadBalancer"]["PhysicalResourceId"]
    log_group = live["resources"]["WafLogGroup"]["PhysicalResourceId"]
    known = parameter_values(LIVE) | {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": "123456789012",
        "LoadBalancer": balancer,
        "WafLogGroup": log_group,
    }
    waf = clients("wafv2")
    acl = waf.create_web_acl(**resolve(props("WebAcl"), known))["Summary"]
    known["WebAcl.Arn"] = acl["ARN"]
    association = resolve(props("WebAclAssociation"), known)
    waf.associate_web_acl(**association)
    logging = resolve(props("WafLogging"), known)
    waf.put_logging_configuration(
        LoggingConfiguration={
            key: logging[key] for key in ("ResourceArn", "LogDestinationConfigs", "LoggingFilter")
        }
    )

    guarding = waf.get_web_acl_for_resource(ResourceArn=balancer)["WebACL"]
    assert guarding["Name"] == f"{LIVE['ProjectName']}-edge"
    limits = {
        rule["Name"]: rule["Statement"]["RateBasedStatement"]["Limit"]
        for rule in guarding["Rules"]
        if "RateBasedStatement" in rule["Statement"]
    }
    assert limits == {
        "rate-per-ip": known["RateLimitPerIp"],
        "api-rate-per-ip": known["ApiRateLimitPerIp"],
        "upload-rate-per-ip": known["UploadRateLimitPerIp"],
    }
    (destination,) = waf.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"][
        "LogDestinationConfigs"
    ]
    assert destination.endswith(f":log-group:{log_group}")
