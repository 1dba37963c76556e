"""The stack template, read with cfn-lint's CloudFormation-aware loader: the properties issues 7
and 24 ask for, checked where they are declared (and, for the WAF's body-size rule and the
template's Rules, evaluated on example requests and parameter sets)."""

from __future__ import annotations

import json
import re

import pytest

from tests.infra.common import TEMPLATE, as_list, key_values, props, resources, template

# The only IAM actions allowed on Resource "*": AWS defines no resource type for them.
WILDCARD_ACTIONS = {
    "cloudwatch:PutMetricData",  # the training role's, held to one namespace by a condition
    "ecr:GetAuthorizationToken",
    "ecs:DeregisterTaskDefinition",
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
}


def test_template_fits_a_deploy_through_s3_and_the_readme_says_so():
    # Over 51,200 bytes `aws cloudformation deploy` needs --s3-bucket; templates read from S3
    # may have up to 1 MB.
    assert TEMPLATE.stat().st_size < 1_000_000
    if TEMPLATE.stat().st_size > 51_200:
        readme = (TEMPLATE.parent / "README.md").read_text()
        deploys = re.findall(r"aws cloudformation deploy[^`]*?(?=\n\s*\n|```)", readme, re.S)
        assert deploys and all("--s3-bucket" in d for d in deploys), deploys


def test_parameters_cover_the_deploy_inputs_and_are_all_grouped():
    parameters = template()["Parameters"]
    for name in (
        "ImageUri",
        "BucketName",
        "CertificateArn",
        "DesiredTasks",
        "MinTasks",
        "MaxTasks",
        "AlarmEmail",
        "Cpu",
        "Memory",
        "ApiPathPatterns",
        "DomainName",
        "HostedZoneId",
        "AllowPlainHttp",
        "OidcIssuer",
        "ApiKey",
        "NatGateways",
        "InterfaceEndpoints",
        "FeedbackRetentionDays",
    ):
        assert name in parameters
    groups = template()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(parameters)


def test_network_spans_two_zones_and_tasks_can_sit_in_private_subnets():
    zones = [props(f"PublicSubnet{i}")["AvailabilityZone"] for i in (1, 2)]
    assert zones == [
        {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
        {"Fn::Select": [1, {"Fn::GetAZs": ""}]},
    ]
    for i in (1, 2):
        for name in (f"PrivateSubnet{i}", f"PrivateRouteTable{i}", f"PrivateDefaultRoute{i}"):
            assert template()["Resources"][name]["Condition"] == "UsePrivateSubnets"
    network = props("AppService")["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["Subnets"]["Fn::If"][0] == "UsePrivateSubnets"
    assert network["AssignPublicIp"] == {"Fn::If": ["UsePrivateSubnets", "DISABLED", "ENABLED"]}


def test_each_zone_leaves_through_its_own_nat_gateway_by_default():
    assert template()["Parameters"]["NatGateways"]["Default"] == "2"
    assert props("NatGateway1")["SubnetId"] == {"Ref": "PublicSubnet1"}
    assert props("NatGateway2")["SubnetId"] == {"Ref": "PublicSubnet2"}
    assert template()["Resources"]["NatGateway2"]["Condition"] == "TwoNats"
    assert props("PrivateDefaultRoute1")["NatGatewayId"] == {"Ref": "NatGateway1"}
    assert props("PrivateDefaultRoute2")["NatGatewayId"] == {
        "Fn::If": ["TwoNats", {"Ref": "NatGateway2"}, {"Ref": "NatGateway1"}]
    }
    for i in (1, 2):
        association = props(f"PrivateSubnet{i}Routes")
        assert association == {
            "SubnetId": {"Ref": f"PrivateSubnet{i}"},
            "RouteTableId": {"Ref": f"PrivateRouteTable{i}"},
        }


def test_interface_endpoints_let_tasks_start_without_a_nat_gateway():
    endpoints = {
        props(name)["ServiceName"]["Fn::Sub"].split("${AWS::Region}.")[1]: name
        for name in resources("AWS::EC2::VPCEndpoint")
    }
    assert set(endpoints) == {"s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager"}
    assert props(endpoints["s3"])["VpcEndpointType"] == "Gateway"  # image layers come from S3
    for service in ("ecr.api", "ecr.dkr", "logs", "secretsmanager"):
        endpoint = props(endpoints[service])
        assert template()["Resources"][endpoints[service]]["Condition"] == "UseEndpoints"
        assert endpoint["PrivateDnsEnabled"] is True
        assert endpoint["SubnetIds"] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
    (rule,) = props("EndpointSecurityGroup")["SecurityGroupIngress"]
    assert (rule["FromPort"], rule["SourceSecurityGroupId"]) == (443, {"Ref": "TaskSecurityGroup"})


def test_load_balancer_idle_timeout_outlasts_a_long_chat():
    attributes = key_values(props("LoadBalancer")["LoadBalancerAttributes"])
    assert attributes["idle_timeout.timeout_seconds"] == {"Ref": "IdleTimeoutSeconds"}
    timeout = template()["Parameters"]["IdleTimeoutSeconds"]
    assert timeout["MinValue"] >= 300 and timeout["Default"] >= 300


def test_app_target_group_is_sticky_and_checks_streamlit_health():
    group = props("AppTargetGroup")
    assert (group["Port"], group["TargetType"]) == (8501, "ip")
    assert group["HealthCheckPath"] == "/_stcore/health"
    attributes = key_values(group["TargetGroupAttributes"])
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"


def test_http_only_redirects_to_https_with_hsts():
    condition, with_tls, without = props("HttpListener")["DefaultActions"]["Fn::If"]
    assert condition == "HasTls"
    assert with_tls == [
        {
            "Type": "redirect",
            "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
        }
    ]
    assert without == [{"Type": "forward", "TargetGroupArn": {"Ref": "AppTargetGroup"}}]
    assert template()["Resources"]["HttpsListener"]["Condition"] == "HasTls"
    listener = props("HttpsListener")
    assert listener["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert listener["Certificates"] == [
        {
            "CertificateArn": {
                "Fn::If": ["HasCertificateArn", {"Ref": "CertificateArn"}, {"Ref": "Certificate"}]
            }
        }
    ]
    attributes = key_values(listener["ListenerAttributes"])
    hsts = attributes["routing.http.response.strict_transport_security.header_value"]
    assert int(re.fullmatch(r"max-age=(\d+)", hsts)[1]) >= 31_536_000
    assert attributes["routing.http.response.x_content_type_options.header_value"] == "nosniff"


def test_the_stack_issues_and_validates_its_certificate_when_given_a_route53_zone():
    certificate = props("Certificate")
    assert template()["Resources"]["Certificate"]["Condition"] == "IssueCertificate"
    assert certificate["ValidationMethod"] == "DNS"
    assert certificate["DomainValidationOptions"] == [
        {"DomainName": {"Ref": "DomainName"}, "HostedZoneId": {"Ref": "HostedZoneId"}}
    ]
    record = props("DnsRecord")
    assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}
    conditions = template()["Conditions"]
    assert conditions["HasTls"] == {
        "Fn::Or": [{"Condition": "HasCertificateArn"}, {"Condition": "HasDnsZone"}]
    }


@pytest.mark.parametrize(
    ("parameters", "holds"),
    [
        ({}, False),  # the defaults: no certificate, and plain HTTP not asked for
        ({"CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x"}, True),
        ({"DomainName": "dishlens.example.com", "HostedZoneId": "Z1"}, True),
        ({"DomainName": "dishlens.example.com"}, False),  # who would validate it?
        ({"AllowPlainHttp": "true"}, True),
    ],
)
def test_plain_http_is_an_explicit_choice(parameters, holds):
    (assertion,) = template()["Rules"]["HttpsUnlessRefused"]["Assertions"]
    assert rule_holds(assertion["Assert"], defaults() | parameters) is holds


@pytest.mark.parametrize(
    ("parameters", "holds"),
    [
        ({}, True),  # sign-in off
        ({"OidcIssuer": "https://idp.example.com"}, False),
        ({"OidcIssuer": "https://idp.example.com", "CertificateArn": "arn:x"}, True),
    ],
)
def test_sign_in_needs_https(parameters, holds):
    (assertion,) = template()["Rules"]["SignInNeedsHttps"]["Assertions"]
    assert rule_holds(assertion["Assert"], defaults() | parameters) is holds


def test_sign_in_is_off_by_default_and_guards_the_app_but_not_its_health_path():
    parameters = template()["Parameters"]
    assert parameters["OidcIssuer"]["Default"] == ""
    assert parameters["OidcClientSecret"]["NoEcho"] is True
    assert template()["Conditions"]["HasSignIn"]["Fn::And"][0] == {"Condition": "HasTls"}
    condition, signed_in, open_ = props("HttpsListener")["DefaultActions"]["Fn::If"]
    assert condition == "HasSignIn"
    assert [a["Type"] for a in signed_in] == ["authenticate-oidc", "forward"]
    assert signed_in[0]["AuthenticateOidcConfig"]["ClientSecret"] == {"Ref": "OidcClientSecret"}
    assert open_ == [{"Type": "forward", "TargetGroupArn": {"Ref": "AppTargetGroup"}}]
    health = props("AppHealthWithoutSignInRule")
    assert health["Conditions"][0]["PathPatternConfig"]["Values"] == [
        props("AppTargetGroup")["HealthCheckPath"]
    ]
    assert health["Priority"] < props("ApiListenerRule")["Priority"]


def test_an_api_key_is_off_by_default_and_then_required_on_the_api_paths():
    parameter = template()["Parameters"]["ApiKey"]
    assert (parameter["Default"], parameter["NoEcho"]) == ("", True)
    assert not re.fullmatch(parameter["AllowedPattern"], "short")
    assert not re.fullmatch(parameter["AllowedPattern"], "*" * 40)  # ALB wildcards
    condition, with_key, without = props("ApiListenerRule")["Conditions"]["Fn::If"]
    paths = {"Field": "path-pattern", "PathPatternConfig": {"Values": {"Ref": "ApiPathPatterns"}}}
    assert condition == "HasApiKey" and without == [paths]
    assert with_key == [
        paths,
        {
            "Field": "http-header",
            "HttpHeaderConfig": {"HttpHeaderName": "X-Api-Key", "Values": [{"Ref": "ApiKey"}]},
        },
    ]
    refusal = props("ApiKeyMissingRule")
    assert template()["Resources"]["ApiKeyMissingRule"]["Condition"] == "HasApiKey"
    assert refusal["Conditions"] == [paths]
    assert refusal["Priority"] > props("ApiListenerRule")["Priority"]  # after the keyed rule
    assert refusal["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "401"


def test_api_paths_go_to_their_own_service_with_its_own_health_check():
    rule = props("ApiListenerRule")
    assert rule["Conditions"]["Fn::If"][2] == [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": {"Ref": "ApiPathPatterns"}}}
    ]
    assert rule["Actions"][0]["TargetGroupArn"] == {"Ref": "ApiTargetGroup"}
    assert "/v1/*" in template()["Parameters"]["ApiPathPatterns"]["Default"].split(",")
    group = props("ApiTargetGroup")
    assert (group["Port"], group["HealthCheckPath"]) == (8000, "/startupz")
    service = props("ApiService")
    assert service["LoadBalancers"][0]["TargetGroupArn"] == {"Ref": "ApiTargetGroup"}
    assert service["TaskDefinition"] == {"Ref": "ApiTaskDefinition"}
    container = props("ApiTaskDefinition")["ContainerDefinitions"][0]
    assert container["Command"][:2] == ["uvicorn", "api.main:app"]
    assert container["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]


def test_only_the_load_balancer_reaches_the_tasks():
    rules = props("TaskSecurityGroup")["SecurityGroupIngress"]
    assert {rule["FromPort"] for rule in rules} == {8501, 8000}
    for rule in rules:
        assert rule["SourceSecurityGroupId"] == {"Ref": "AlbSecurityGroup"}
        assert "CidrIp" not in rule and "CidrIpv6" not in rule
    for extra in resources("AWS::EC2::SecurityGroupIngress").values():
        assert extra["Properties"]["GroupId"] != {"Ref": "TaskSecurityGroup"}


def test_services_roll_back_failed_deployments_after_a_grace_period():
    for name in ("AppService", "ApiService"):
        service = props(name)
        assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
            "Enable": True,
            "Rollback": True,
        }
        assert service["HealthCheckGracePeriodSeconds"] == {"Ref": "HealthCheckGracePeriodSeconds"}
        assert service["LaunchType"] == "FARGATE"
    assert template()["Parameters"]["HealthCheckGracePeriodSeconds"]["Default"] >= 60


def test_tasks_have_read_only_roots_a_tmp_volume_and_logs_with_retention():
    for name in ("AppTaskDefinition", "ApiTaskDefinition"):
        task = props(name)
        assert task["RequiresCompatibilities"] == ["FARGATE"]
        assert (task["Cpu"], task["Memory"]) == ({"Ref": "Cpu"}, {"Ref": "Memory"})
        assert task["Volumes"] == [{"Name": "tmp"}]
        (container,) = task["ContainerDefinitions"]
        assert container["ReadonlyRootFilesystem"] is True
        assert container["MountPoints"] == [
            {"SourceVolume": "tmp", "ContainerPath": "/tmp", "ReadOnly": False}
        ]
        assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    assert props("LogGroup")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_hf_token_comes_from_secrets_manager_never_from_plain_environment():
    app = props("AppTaskDefinition")["ContainerDefinitions"][0]
    assert app["Secrets"] == [{"Name": "HF_TOKEN", "ValueFrom": {"Ref": "HfTokenSecret"}}]
    for name in ("AppTaskDefinition", "ApiTaskDefinition"):
        for container in props(name)["ContainerDefinitions"]:
            assert "HF_TOKEN" not in json.dumps(container.get("Environment", []))
    assert "SecretString" not in props("HfTokenSecret")
    assert not re.search(r"hf_[A-Za-z0-9]{20,}", TEMPLATE.read_text())


def test_feedback_goes_to_the_bucket_and_models_stay_in_the_image_unless_overridden():
    environment = props("AppTaskDefinition")["ContainerDefinitions"][0]["Environment"]
    assert {"Name": "FEEDBACK_URI", "Value": {"Fn::Sub": "s3://${Bucket}/feedback/"}} in environment
    model = {"Name": "MODEL_URI", "Value": {"Ref": "ModelUri"}}
    assert {"Fn::If": ["HasModelUri", model, {"Ref": "AWS::NoValue"}]} in environment


def test_each_service_scales_on_cpu_and_on_requests_per_task():
    policies = resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    for target, service, low, high in (
        ("AppScalableTarget", "AppService", "MinTasks", "MaxTasks"),
        ("ApiScalableTarget", "ApiService", "ApiMinTasks", "ApiMaxTasks"),
    ):
        scalable = props(target)
        assert scalable["ScalableDimension"] == "ecs:service:DesiredCount"
        assert f"${{{service}.Name}}" in scalable["ResourceId"]["Fn::Sub"]
        assert scalable["MinCapacity"] == {"Fn::If": ["HasImage", {"Ref": low}, 0]}
        assert scalable["MaxCapacity"] == {"Fn::If": ["HasImage", {"Ref": high}, 0]}
        metrics = {
            p["Properties"]["TargetTrackingScalingPolicyConfiguration"][
                "PredefinedMetricSpecification"
            ]["PredefinedMetricType"]
            for p in policies
            if p["Properties"]["ScalingTargetId"] == {"Ref": target}
            and p["Properties"]["PolicyType"] == "TargetTrackingScaling"
        }
        assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}


def test_a_bootstrap_stack_runs_no_tasks():
    assert props("AppService")["DesiredCount"] == {
        "Fn::If": ["HasImage", {"Ref": "DesiredTasks"}, 0]
    }
    assert props("ApiService")["DesiredCount"] == {
        "Fn::If": ["HasImage", {"Ref": "ApiMinTasks"}, 0]
    }


def alarm_metrics(alarm: dict) -> set[str]:
    """Every metric name an alarm watches, directly or through metric math."""
    found = {alarm.get("MetricName")}
    for query in alarm.get("Metrics", []):
        found.add(query.get("MetricStat", {}).get("Metric", {}).get("MetricName"))
    return found - {None}


def test_alarms_cover_latency_errors_memory_and_no_healthy_hosts_and_notify_sns():
    alarms = {name: a["Properties"] for name, a in resources("AWS::CloudWatch::Alarm").items()}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    latency = props("SlowResponsesAlarm")
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("TargetResponseTime", "p99")
    assert latency["Threshold"] == {"Ref": "P99ThresholdSeconds"}
    errors = props("ServerErrorsAlarm")
    assert alarm_metrics(errors) == {
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
    }
    memory = props("MemoryAlarm")
    assert alarm_metrics(memory) == {"MemoryUtilization"}
    services = {
        q["MetricStat"]["Metric"]["Dimensions"][1]["Value"]["Fn::GetAtt"][0]
        for q in memory["Metrics"]
        if "MetricStat" in q
    }
    assert services == {"AppService", "ApiService"}
    assert memory["Threshold"] == {"Ref": "MemoryPercent"}
    for name, group, condition in (
        ("AppNoHealthyHostsAlarm", "AppTargetGroup", "HasImage"),
        ("ApiNoHealthyHostsAlarm", "ApiTargetGroup", "ApiRuns"),
    ):
        alarm = alarms[name]
        assert template()["Resources"][name]["Condition"] == condition
        assert (alarm["MetricName"], alarm["Statistic"]) == ("HealthyHostCount", "Minimum")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
        assert alarm["TreatMissingData"] == "breaching"  # no targets report no data
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions["TargetGroup"] == {"Fn::GetAtt": [group, "TargetGroupFullName"]}
    subscription = props("AlarmEmailSubscription")
    assert subscription["Protocol"] == "email"
    assert subscription["TopicArn"] == {"Ref": "AlarmTopic"}


def test_failed_deployments_reach_the_alarm_topic_through_eventbridge():
    rule = props("DeploymentFailedRule")
    assert rule["EventPattern"] == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Deployment State Change"],
        "resources": [{"Ref": "AppService"}, {"Ref": "ApiService"}],
        "detail": {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]},
    }
    assert rule["Targets"] == [{"Id": "alarm-topic", "Arn": {"Ref": "AlarmTopic"}}]
    policy = props("AlarmTopicPolicy")
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    events, alarms = policy["PolicyDocument"]["Statement"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["DeploymentFailedRule", "Arn"]}}
    }
    # A topic policy replaces the default one: CloudWatch alarms must stay allowed too.
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}


def test_dashboard_shows_the_operating_metrics():
    body, _ = props("Dashboard")["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    text = json.dumps(dashboard)
    for metric in (
        "RequestCount",
        "TargetResponseTime",
        "HTTPCode_Target_5XX_Count",
        "HealthyHostCount",
        "CPUUtilization",
        "MemoryUtilization",
        "RunningTaskCount",
    ):
        assert metric in text
    assert '"stat": "p99"' in text


def test_bucket_is_private_encrypted_versioned_and_tls_only():
    bucket = props("Bucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (statement,) = props("BucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert template()["Resources"]["Bucket"]["DeletionPolicy"] == "Retain"


def test_repository_scans_on_push_keeps_tags_immutable_and_expires_images():
    repository = props("Repository")
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    rules = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert {rule["action"]["type"] for rule in rules} == {"expire"}
    assert {rule["selection"]["tagStatus"] for rule in rules} == {"untagged", "any"}


def iam_statements() -> list[tuple[str, dict]]:
    """``(role, statement)`` for every permission statement of every role."""
    found = []
    for name, role in resources("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], f"{name}: managed policies hide scope"
        for policy in role["Properties"].get("Policies", []):
            found += [(name, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def test_iam_grants_no_wildcard_resources_except_where_aws_requires_them():
    for role, statement in iam_statements():
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), (role, actions)
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= WILDCARD_ACTIONS, (role, actions)


def test_execution_role_pulls_the_image_writes_logs_and_reads_the_one_secret():
    grants = {
        a: s["Resource"]
        for r, s in iam_statements()
        if r == "ExecutionRole"
        for a in as_list(s["Action"])
    }
    assert grants["secretsmanager:GetSecretValue"] == {"Ref": "HfTokenSecret"}
    assert grants["logs:PutLogEvents"] == {"Fn::GetAtt": ["LogGroup", "Arn"]}
    assert grants["ecr:BatchGetImage"] == {"Fn::GetAtt": ["Repository", "Arn"]}
    assert sorted(grants) == sorted(
        [
            "ecr:GetAuthorizationToken",
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "secretsmanager:GetSecretValue",
        ]
    )


def test_task_roles_read_the_model_prefix_and_only_the_app_writes_feedback():
    def grants(role: str) -> dict[str, list]:
        found: dict[str, list] = {}
        for r, s in iam_statements():
            if r == role:
                for action in as_list(s["Action"]):
                    found.setdefault(action, []).append((s["Resource"], s.get("Condition")))
        return found

    models = [({"Fn::Sub": "${Bucket.Arn}/models/*"}, None)]
    listing = [({"Fn::GetAtt": ["Bucket", "Arn"]}, {"StringLike": {"s3:prefix": "models/*"}})]
    app, api = grants("AppTaskRole"), grants("ApiTaskRole")
    assert app == {
        "s3:GetObject": models,
        "s3:ListBucket": listing,
        "s3:PutObject": [({"Fn::Sub": "${Bucket.Arn}/feedback/*"}, None)],
    }
    assert api == {"s3:GetObject": models, "s3:ListBucket": listing}


def test_deploy_role_trusts_only_this_repositorys_main_branch():
    (statement,) = props("DeployRole")["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(statement["Condition"]) == {"StringEquals"}  # exact match, no wildcards
    claims = statement["Condition"]["StringEquals"]
    assert claims["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    subject = claims["token.actions.githubusercontent.com:sub"]["Fn::Sub"]
    assert subject.startswith("repo:${GitHubRepository}:")
    assert subject.endswith(":ref:refs/heads/main")
    assert "*" not in subject
    assert props("GitHubOidcProvider")["ClientIdList"] == ["sts.amazonaws.com"]


def test_deploy_role_can_push_and_update_only_this_stacks_services():
    grants = {a: s for r, s in iam_statements() if r == "DeployRole" for a in as_list(s["Action"])}
    assert grants["ecs:UpdateService"]["Resource"] == [{"Ref": "AppService"}, {"Ref": "ApiService"}]
    assert grants["ecr:PutImage"]["Resource"] == {"Fn::GetAtt": ["Repository", "Arn"]}
    assert grants["iam:PassRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert grants["cloudformation:DescribeStacks"]["Resource"] == {"Ref": "AWS::StackId"}


def test_outputs_name_what_deploys_and_people_need():
    outputs = template()["Outputs"]
    for name in (
        "LoadBalancerUrl",
        "BucketName",
        "RepositoryUri",
        "ClusterName",
        "AppServiceName",
        "ApiServiceName",
        "DeployRoleArn",
    ):
        assert outputs[name]["Description"]


def defaults() -> dict[str, str]:
    """Every parameter at its default, as CloudFormation hands them to Rules (strings)."""
    return {
        name: str(parameter.get("Default", ""))
        for name, parameter in template()["Parameters"].items()
    }


def rule_holds(expression, parameters: dict[str, str]) -> bool | str | list:
    """Evaluate a Rules assertion (Fn::Or/And/Equals/Contains over Refs) for ``parameters``."""
    if isinstance(expression, list):
        return [rule_holds(item, parameters) for item in expression]
    if not isinstance(expression, dict):
        return expression
    ((function, args),) = expression.items()
    if function == "Ref":
        return parameters[args]
    values = rule_holds(args, parameters)
    return {
        "Fn::Or": lambda: any(values),
        "Fn::And": lambda: all(values),
        "Fn::Equals": lambda: values[0] == values[1],
        "Fn::Not": lambda: not values[0],
        "Fn::Contains": lambda: values[1] in values[0],
    }[function]()


def test_cpu_and_memory_must_be_a_fargate_pair():
    (assertion,) = template()["Rules"]["FargateCpuMemory"]["Assertions"]
    cpu, memory = template()["Parameters"]["Cpu"], template()["Parameters"]["Memory"]
    assert rule_holds(assertion["Assert"], {"Cpu": cpu["Default"], "Memory": memory["Default"]})
    for pair in [("512", "1024"), ("1024", "8192"), ("2048", "4096"), ("4096", "8192")]:
        assert rule_holds(assertion["Assert"], dict(zip(("Cpu", "Memory"), pair, strict=True)))
    for pair in [("512", "8192"), ("1024", "1024"), ("2048", "2048"), ("4096", "4096")]:
        assert not rule_holds(assertion["Assert"], dict(zip(("Cpu", "Memory"), pair, strict=True)))


# ---------------------------------------------------------------------------------------------
# The edge: WAF on the load balancer


def waf_rules() -> dict[str, dict]:
    return {rule["Name"]: rule for rule in props("WebAcl")["Rules"]}


def test_waf_guards_the_load_balancer_with_the_managed_rule_groups():
    association = props("WebAclAssociation")
    assert association == {
        "ResourceArn": {"Ref": "LoadBalancer"},
        "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]},
    }
    acl = props("WebAcl")
    assert (acl["Scope"], acl["DefaultAction"]) == ("REGIONAL", {"Allow": {}})
    managed = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for rule in acl["Rules"]
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert managed == {
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    }
    priorities = [rule["Priority"] for rule in acl["Rules"]]
    assert len(set(priorities)) == len(priorities)
    logging = props("WafLogging")
    assert logging["ResourceArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert props("WafLogGroup")["LogGroupName"]["Fn::Sub"].startswith("aws-waf-logs-")


def test_rate_limits_per_address_are_tighter_on_the_api_and_on_streamlit_uploads():
    from streamlit.web.server.server import UPLOAD_FILE_ENDPOINT

    limits = {}
    for rule in props("WebAcl")["Rules"]:
        statement = rule["Statement"].get("RateBasedStatement")
        if statement:
            assert statement["AggregateKeyType"] == "IP"
            assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
            scope = statement.get("ScopeDownStatement", {}).get("ByteMatchStatement", {})
            limits[scope.get("SearchString")] = statement["Limit"]["Ref"]
    assert limits == {
        None: "RateLimitPerIp",
        "/v1/": "ApiRateLimitPerIp",
        UPLOAD_FILE_ENDPOINT: "UploadRateLimitPerIp",
    }
    parameters = template()["Parameters"]
    assert parameters["ApiRateLimitPerIp"]["Default"] < parameters["RateLimitPerIp"]["Default"]
    assert parameters["UploadRateLimitPerIp"]["Default"] < parameters["RateLimitPerIp"]["Default"]


# The 8 KB body-size rule of AWS's common rule set labels what it would have blocked.
BODY_LABEL = "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"
CRS_BODY_LIMIT = 8 * 1024


def matches(statement: dict, path: str, labels: set[str]) -> bool:
    """Evaluate the WAF statement kinds the body-size rule uses for one request."""
    ((kind, body),) = statement.items()
    if kind == "AndStatement":
        return all(matches(s, path, labels) for s in body["Statements"])
    if kind == "OrStatement":
        return any(matches(s, path, labels) for s in body["Statements"])
    if kind == "NotStatement":
        return not matches(body["Statement"], path, labels)
    if kind == "LabelMatchStatement":
        return body["Key"] in labels
    if kind == "ByteMatchStatement":
        assert body["FieldToMatch"] == {"UriPath": {}}
        text, position = body["SearchString"], body["PositionalConstraint"]
        return path == text if position == "EXACTLY" else path.startswith(text)
    raise AssertionError(f"unexpected statement {kind}")


def blocked_for_size(path: str, body_bytes: int) -> bool:
    """Whether the web ACL blocks a request of this size on this path for its size alone."""
    (common,) = [r for r in props("WebAcl")["Rules"] if r["Name"] == "common"]
    overrides = common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    counted = {o["Name"] for o in overrides if o["ActionToUse"] == {"Count": {}}}
    if body_bytes <= CRS_BODY_LIMIT:
        return False
    if "SizeRestrictions_BODY" not in counted:
        return True  # the managed rule blocks it
    labels = {BODY_LABEL}
    return any(
        "Block" in rule.get("Action", {}) and matches(rule["Statement"], path, labels)
        for rule in props("WebAcl")["Rules"]
        if "RateBasedStatement" not in rule["Statement"]
        and "ManagedRuleGroupStatement" not in rule["Statement"]
    )


def test_photo_uploads_up_to_max_image_mb_pass_the_waf_and_other_large_bodies_do_not():
    from streamlit.web.server.server import UPLOAD_FILE_ENDPOINT

    from api.main import app
    from dishlens.settings import load_settings

    cap = load_settings({}).max_image_bytes + 64 * 1024  # the photo plus multipart framing
    classify = "/v1/classify"
    assert "post" in app.openapi()["paths"][classify]  # the API's real upload route
    upload = f"{UPLOAD_FILE_ENDPOINT}/6f1c2e/1a2b3c"  # /{session_id}/{file_id}
    for path in (classify, upload):
        assert not blocked_for_size(path, cap), path
        assert not blocked_for_size(path, 100 * 1024), path
    for path in ("/v1/labels", "/", "/_stcore/health", f"{classify}/x"):
        assert blocked_for_size(path, 20 * 1024), path
        assert not blocked_for_size(path, 2 * 1024), path


def test_no_waf_rule_limits_body_size_on_its_own():
    text = json.dumps(props("WebAcl"))
    assert "SizeConstraintStatement" not in text


# ---------------------------------------------------------------------------------------------
# Availability, tasks and logs


def test_each_service_keeps_two_tasks_spread_over_both_zones_by_default():
    parameters = template()["Parameters"]
    for name in ("DesiredTasks", "MinTasks", "ApiMinTasks"):
        assert parameters[name]["Default"] >= 2, name
    for name in ("MaxTasks", "ApiMaxTasks"):
        assert parameters[name]["Default"] > 2, name
    for service in ("AppService", "ApiService"):
        assert props(service)["AvailabilityZoneRebalancing"] == "ENABLED"
        network = props(service)["NetworkConfiguration"]["AwsvpcConfiguration"]
        private, public = network["Subnets"]["Fn::If"][1:]
        assert private == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
        assert public == [{"Ref": "PublicSubnet1"}, {"Ref": "PublicSubnet2"}]


def test_containers_drop_every_capability_and_run_an_init_process():
    for name in ("AppTaskDefinition", "ApiTaskDefinition"):
        (container,) = props(name)["ContainerDefinitions"]
        assert container["LinuxParameters"] == {
            "InitProcessEnabled": True,
            "Capabilities": {"Drop": ["ALL"]},
        }


def test_api_keep_alive_outlasts_the_longest_idle_timeout_the_load_balancer_may_have():
    command = props("ApiTaskDefinition")["ContainerDefinitions"][0]["Command"]
    keep_alive = int(command[command.index("--timeout-keep-alive") + 1])
    idle = template()["Parameters"]["IdleTimeoutSeconds"]
    assert keep_alive > idle["MaxValue"] >= idle["Default"]


def test_load_balancer_keeps_access_logs_and_deletion_protection():
    attributes = key_values(props("LoadBalancer")["LoadBalancerAttributes"])
    assert attributes["deletion_protection.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == {"Ref": "AccessLogBucket"}
    prefix = attributes["access_logs.s3.prefix"]
    assert "AccessLogBucketPolicy" in template()["Resources"]["LoadBalancer"]["DependsOn"]
    writes, server_logs, tls_only = props("AccessLogBucketPolicy")["PolicyDocument"]["Statement"]
    assert server_logs["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    logging = props("Bucket")["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    assert server_logs["Resource"] == {
        "Fn::Sub": f"${{AccessLogBucket.Arn}}/{logging['LogFilePrefix']}*"
    }
    assert writes["Action"] == "s3:PutObject"
    assert writes["Resource"] == {
        "Fn::Sub": f"${{AccessLogBucket.Arn}}/{prefix}/AWSLogs/${{AWS::AccountId}}/*"
    }
    condition, service, account = writes["Principal"]["Fn::If"]
    assert condition == "ElbLogsByService"
    assert service == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    _, names = account["AWS"]["Fn::Sub"]
    assert names["ElbAccount"]["Fn::FindInMap"][:2] == ["ElbLogDelivery", {"Ref": "AWS::Region"}]
    assert tls_only["Effect"] == "Deny"
    bucket = props("AccessLogBucket")
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"  # ALB needs SSE-S3
    (expiry,) = bucket["LifecycleConfiguration"]["Rules"]
    assert expiry["ExpirationInDays"] == {"Ref": "AccessLogRetentionDays"}


def test_every_region_maps_to_an_elb_log_writer():
    accounts = template()["Mappings"]["ElbLogDelivery"]
    assert {"us-east-1", "eu-west-1", "eu-central-2"} <= set(accounts)
    for region, entry in accounts.items():
        assert re.fullmatch(r"\d{12}|service", entry["Account"]), region


def test_feedback_photos_expire():
    rules = {r["Id"]: r for r in props("Bucket")["LifecycleConfiguration"]["Rules"]}
    feedback = rules["expire-feedback"]
    assert feedback["Prefix"] == "feedback/"
    assert feedback["ExpirationInDays"] == {"Ref": "FeedbackRetentionDays"}
    environment = props("AppTaskDefinition")["ContainerDefinitions"][0]["Environment"]
    assert {"Name": "FEEDBACK_URI", "Value": {"Fn::Sub": "s3://${Bucket}/feedback/"}} in environment


def test_deploy_role_updates_only_this_stack_and_tags_only_its_task_definitions():
    grants = {a: s for r, s in iam_statements() if r == "DeployRole" for a in as_list(s["Action"])}
    assert grants["cloudformation:UpdateStack"]["Resource"] == {"Ref": "AWS::StackId"}
    assert grants["ecr:DescribeImages"]["Resource"] == {"Fn::GetAtt": ["Repository", "Arn"]}
    tags = grants["ecs:TagResource"]["Resource"]
    assert tags[0]["Fn::Sub"].endswith(":task-definition/${ProjectName}-*:*")
    assert tags[1:] == [{"Ref": "AppService"}, {"Ref": "ApiService"}]
    assert grants["iam:GetRole"]["Resource"] == grants["iam:PassRole"]["Resource"]
    assert not any(a.startswith(("cloudformation:Create", "cloudformation:Delete")) for a in grants)
