"""The stack template, read with cfn-lint's CloudFormation-aware loader: the properties issue 7
asks for, checked where they are declared."""

from __future__ import annotations

import json
import re

from tests.infra.common import TEMPLATE, as_list, key_values, props, resources, template

# The only IAM actions allowed on Resource "*": AWS defines no resource type for them.
WILDCARD_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
}


def test_template_fits_a_direct_deploy():
    # `aws cloudformation deploy` sends bodies up to 51,200 bytes without an S3 bucket.
    assert TEMPLATE.stat().st_size < 51_200


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
    for name in ("PrivateSubnet1", "PrivateSubnet2", "NatGateway", "PrivateDefaultRoute"):
        assert template()["Resources"][name]["Condition"] == "UsePrivateSubnets"
    network = props("AppService")["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["Subnets"]["Fn::If"][0] == "UsePrivateSubnets"
    assert network["AssignPublicIp"] == {"Fn::If": ["UsePrivateSubnets", "DISABLED", "ENABLED"]}


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


def test_http_redirects_to_https_when_a_certificate_is_given():
    condition, with_certificate, without = props("HttpListener")["DefaultActions"]["Fn::If"]
    assert condition == "HasCertificate"
    assert with_certificate[0]["Type"] == "redirect"
    assert with_certificate[0]["RedirectConfig"]["Protocol"] == "HTTPS"
    assert without[0] == {"Type": "forward", "TargetGroupArn": {"Ref": "AppTargetGroup"}}
    assert template()["Resources"]["HttpsListener"]["Condition"] == "HasCertificate"
    assert props("HttpsListener")["DefaultActions"][0]["TargetGroupArn"] == {
        "Ref": "AppTargetGroup"
    }


def test_api_paths_go_to_their_own_service_with_its_own_health_check():
    rule = props("ApiListenerRule")
    assert rule["Conditions"] == [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": {"Ref": "ApiPathPatterns"}}}
    ]
    assert rule["Actions"][0]["TargetGroupArn"] == {"Ref": "ApiTargetGroup"}
    assert "/v1/*" in template()["Parameters"]["ApiPathPatterns"]["Default"].split(",")
    group = props("ApiTargetGroup")
    assert (group["Port"], group["HealthCheckPath"]) == (8000, "/readyz")
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


def test_alarms_cover_latency_errors_and_health_and_notify_sns():
    alarms = resources("AWS::CloudWatch::Alarm")
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    text = json.dumps(alarms)
    assert '"ExtendedStatistic": "p95"' in text and "TargetResponseTime" in text
    assert "HTTPCode_Target_5XX_Count" in text and "HTTPCode_ELB_5XX_Count" in text
    unhealthy = [
        a for a in alarms.values() if a["Properties"].get("MetricName") == "UnHealthyHostCount"
    ]
    assert len(unhealthy) == 2
    subscription = props("AlarmEmailSubscription")
    assert subscription["Protocol"] == "email"
    assert subscription["TopicArn"] == {"Ref": "AlarmTopic"}


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
    assert '"stat": "p95"' in text


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
