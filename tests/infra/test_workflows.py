"""The GitHub workflows, read as YAML: triggers, permissions, pinned actions, the job graph
(deploy needs CI) and the steps issues 7 and 24 ask for: the image smoke-run and scanned before
anything deploys, immutable tags that re-runs reuse, the release as a stack update, the smoke
test through the load balancer and the rollback it gates. Run scripts are checked with
`bash -n`; .github/scripts/release.sh runs against a stand-in `aws` command that records
its arguments (no AWS account here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.common import ROOT, WORKFLOWS

CI = ROOT / ".github" / "workflows" / "ci.yml"
DEPLOY = ROOT / ".github" / "workflows" / "deploy.yml"
SCRIPTS = ROOT / ".github" / "scripts"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def load(path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return workflow


def steps(path) -> list[dict[str, Any]]:
    return [step for job in load(path)["jobs"].values() for step in job.get("steps", [])]


def job_steps(path, job: str) -> list[dict[str, Any]]:
    return load(path)["jobs"][job]["steps"]


def named(path, name: str) -> dict[str, Any]:
    (step,) = [s for s in steps(path) if s.get("name") == name]
    return step


def order(step_list: list[dict[str, Any]]) -> list[str]:
    return [s.get("name") or s["uses"].split("@")[0] for s in step_list]


def step_using(path, action: str) -> list[dict[str, Any]]:
    return [s for s in steps(path) if s.get("uses", "").startswith(action + "@")]


def runs(path) -> str:
    return "\n".join(s.get("run", "") for s in steps(path))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version_noted(path):
    text = path.read_text()
    for step in steps(path):
        if "uses" in step:
            assert PINNED.match(step["uses"]), step["uses"]
            assert re.search(re.escape(step["uses"]) + r" # v\d+\.\d+\.\d+\b", text), step["uses"]


def test_each_action_has_one_pin_across_workflows():
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for step in steps(path):
            if "uses" in step:
                action, sha = step["uses"].split("@")
                pins.setdefault(action, set()).add(sha)
    assert all(len(shas) == 1 for shas in pins.values()), pins


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_scripts_are_valid_bash_without_expressions(path):
    for step in steps(path):
        if "run" in step:
            # ${{ }} in a script is a template-injection risk: values come in through env.
            assert "${{" not in step["run"], step.get("name")
            subprocess.run(["bash", "-n", "-c", step["run"]], check=True)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_do_not_keep_credentials(path):
    for step in step_using(path, "actions/checkout"):
        assert step["with"]["persist-credentials"] is False


def test_ci_runs_linters_and_tests_on_pull_requests_and_pushes():
    workflow = load(CI)
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["permissions"] == {"contents": "read"}
    (setup,) = step_using(CI, "actions/setup-python")
    assert setup["with"]["cache"] == "pip"
    script = runs(CI)
    for command in (".ci/run", "https://download.pytorch.org/whl/cpu"):
        assert command in script
    # .ci/run lints (each linter once, scripts/lint.sh) before it tests.
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert ci_run.index("scripts/lint.sh") < ci_run.index("python3 -m pytest")
    lint = (ROOT / "scripts" / "lint.sh").read_text()
    for command in (
        "ruff check .",
        "ruff format --check .",
        "mypy",
        "cfn-lint --include-checks I -- infra/*.yaml",
        "hadolint Dockerfile",
        "zizmor --offline --persona pedantic .github/workflows",
        "check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml",
    ):
        assert f"step {command}" in lint


def test_only_a_green_push_to_main_deploys():
    workflow = load(CI)
    deploy = workflow["jobs"]["deploy"]
    assert set(deploy["needs"]) == {"test", "image"}  # every other job of the pipeline
    assert set(workflow["jobs"]) == {"test", "image", "deploy"}
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["uses"] == "$/.github/workflows/deploy.yml"
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    # deploy.yml runs only when ci.yml calls it: no push or manual trigger of its own.
    assert load(DEPLOY)["on"] == {
        "workflow_call": {"secrets": {"DISHLENS_API_KEY": {"required": False}}}
    }
    # A push to main is never cancelled half-way through a deploy.
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.ref != 'refs/heads/main' }}"


def app_builds(step_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The build steps of the default target (the app image): those that name no target."""
    return [
        s
        for s in step_list
        if s.get("uses", "").startswith("docker/build-push-action@") and "target" not in s["with"]
    ]


def assert_build_smoke_scan(step_list: list[dict[str, Any]], image: str) -> None:
    """Build (loaded, not pushed), then smoke-run, then a scan that fails on critical findings."""
    (build,) = app_builds(step_list)
    assert build["with"]["load"] is True and build["with"]["push"] is False
    assert build["with"]["tags"] == image
    (smoke,) = [s for s in step_list if s.get("name") == "Smoke-run the image"]
    assert smoke["run"].startswith(".github/scripts/smoke-image.sh ")
    (scan,) = [s for s in step_list if s.get("uses", "").startswith("aquasecurity/trivy-action@")]
    assert scan["with"]["image-ref"] == image
    assert scan["with"]["severity"] == "CRITICAL"
    assert scan["with"]["exit-code"] == "1"  # a finding fails the step, and the job
    assert "continue-on-error" not in scan
    names = order(step_list)
    assert names.index(build["name"]) < names.index(smoke["name"]) < names.index(scan["name"])


def test_ci_builds_smoke_runs_and_scans_the_image():
    assert_build_smoke_scan(job_steps(CI, "image"), "dishlens:ci")


def test_smoke_run_starts_both_commands_as_ecs_does():
    script = (SCRIPTS / "smoke-image.sh").read_text()
    subprocess.run(["bash", "-n", str(SCRIPTS / "smoke-image.sh")], check=True)
    for flag in ("--read-only", "--volume /tmp", "--cap-drop ALL", "--init"):
        assert flag in script
    from tests.infra.common import props

    api = props("ApiTaskDefinition")["ContainerDefinitions"][0]["Command"]
    assert " ".join(api).replace(" --forwarded-allow-ips *", "") in script
    assert (
        "python3 infra/smoke.py --app http://127.0.0.1:8501 --api http://127.0.0.1:8000" in script
    )


def test_deploy_runs_with_least_permissions_and_one_at_a_time():
    workflow = load(DEPLOY)
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["environment"]["name"] == "production"


def test_deploy_authenticates_with_oidc_only():
    (credentials,) = step_using(DEPLOY, "aws-actions/configure-aws-credentials")
    assert set(credentials["with"]) == {"role-to-assume", "aws-region"}
    text = DEPLOY.read_text()
    assert "aws-access-key-id" not in text
    assert set(re.findall(r"secrets\.(\w+)", text)) == {"DISHLENS_API_KEY"}


def test_deploy_builds_smoke_runs_and_scans_the_released_model_before_pushing():
    deploy_steps = steps(DEPLOY)
    image = "${{ steps.stack.outputs.image }}"
    assert_build_smoke_scan(deploy_steps, image)
    (build,) = app_builds(deploy_steps)
    assert build["with"]["context"] == "."  # the path context, which holds model/
    assert build["with"]["build-args"] == "MODEL_DIR=model"
    fetch = named(DEPLOY, "Fetch and verify the model")
    assert fetch["run"] == 'python scripts/fetch_model.py "$MODEL" model'
    assert fetch["env"]["MODEL"] == "${{ steps.stack.outputs.model }}"  # the resolved version
    names = order(deploy_steps)
    assert names.index("Fetch and verify the model") < names.index("Build the image")
    assert names.index("Scan the image (fails on critical findings)") < names.index(
        "Push the image"
    )
    push = named(DEPLOY, "Push the image")
    assert 'docker push "$image"' in push["run"]
    assert push["env"]["IMAGE"] == image


def test_deploy_tags_are_immutable_and_a_rerun_reuses_the_pushed_image():
    script = named(DEPLOY, "Read the stack and name the image")["run"]
    assert 'tag="$GITHUB_SHA-$(printf \'%s\' "$model" | sha256sum | cut -c1-12)"' in script
    assert 'aws ecr describe-images --repository-name "${repository#*/}"' in script
    assert "latest" not in DEPLOY.read_text()
    names = order(steps(DEPLOY))
    first = names.index("actions/setup-python")
    release = names.index("Release the image (stack update)")
    for step in steps(DEPLOY)[first:release]:
        if step.get("name") != "Stop here on a bootstrap stack":
            assert step["if"] == "steps.stack.outputs.pushed == 'false'", step


STACK = {
    "Parameters": [{"ParameterKey": "ImageUri", "ParameterValue": "repo:old"}],
    "Outputs": [
        {"OutputKey": "RepositoryUri", "OutputValue": "1234.dkr.ecr.us-east-1.amazonaws.com/dl"},
        {"OutputKey": "LoadBalancerUrl", "OutputValue": "https://dishlens.example.com/"},
    ],
}
SHA = "0123456789abcdef0123456789abcdef01234567"


def run_step(path, name: str, tmp_path, env: dict[str, str]) -> tuple[int, dict, str]:
    """Run one step's script as GitHub's default shell does (``bash -e``) with ``env``;
    returns its status, what it wrote to ``GITHUB_OUTPUT`` and what it printed."""
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    script = named(path, name)["run"]
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        env={**env, "GITHUB_OUTPUT": str(outputs)},
        capture_output=True,
        text=True,
    )
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return result.returncode, values, result.stdout + result.stderr


def name_the_image(
    tmp_path, model_uri: str, pointer: Any = None, **more: str
) -> tuple[int, dict, str]:
    """Run deploy.yml's "Read the stack and name the image" step with a stand-in `aws` whose
    S3 holds ``pointer`` (a JSON value, or bytes as they are)."""
    s3_object = tmp_path / "pointer"
    if pointer is not None:
        raw = pointer if isinstance(pointer, bytes) else json.dumps(pointer).encode()
        s3_object.write_bytes(raw)
    env = stand_in_aws(
        tmp_path,
        STACK,
        MODEL_URI=model_uri,
        GITHUB_SHA=SHA,
        APP_URL="",
        S3_OBJECT=str(s3_object),
        **more,
    )
    return run_step(DEPLOY, "Read the stack and name the image", tmp_path, env)


def tag_of(model: str) -> str:
    import hashlib

    return f"{SHA}-{hashlib.sha256(model.encode()).hexdigest()[:12]}"


def test_deploy_resolves_a_production_pointer_to_its_version_before_naming_the_image(tmp_path):
    pointer = "s3://bucket/models/food/production"
    code, outputs, _ = name_the_image(tmp_path, pointer, {"version": "2026-12-04"})
    assert code == 0
    assert outputs["model"] == "s3://bucket/models/food/2026-12-04/"
    assert outputs["image"] == f"{STACK['Outputs'][0]['OutputValue']}:" + tag_of(outputs["model"])
    assert (outputs["pushed"], outputs["url"]) == ("true", "https://dishlens.example.com")
    calls = (tmp_path / "calls.txt").read_text()
    assert f"s3 cp {pointer} -" in calls
    # The training variant is pushed last: when it is there, both are.
    assert f"--image-ids imageTag={tag_of(outputs['model'])}-training\n" in calls

    # A moved pointer names another version: a new tag, so a new image with that version.
    code, moved, _ = name_the_image(tmp_path, pointer + "/", {"version": "2026-11-23"})
    assert code == 0 and moved["model"] == "s3://bucket/models/food/2026-11-23/"
    assert moved["image"] != outputs["image"]


def test_deploy_of_a_version_uri_tags_it_as_before(tmp_path):
    version = "s3://bucket/models/food/2026-12-04/"
    code, outputs, _ = name_the_image(tmp_path, version)
    assert code == 0 and outputs["model"] == version
    assert outputs["image"].endswith(":" + tag_of(version))
    # The same version named directly or through the pointer is the same image.
    code, through_pointer, _ = name_the_image(
        tmp_path, "s3://bucket/models/food/production", {"version": "2026-12-04"}
    )
    assert through_pointer["image"] == outputs["image"]
    assert "s3 cp" in (tmp_path / "calls.txt").read_text()


@pytest.mark.parametrize(
    ("pointer", "message"),
    [
        (None, "Could not read the model pointer s3://bucket/models/food/production"),
        (b"<html>", "Could not read the model pointer"),
        ({"previous": "1"}, "Could not read the model pointer"),
        (
            {"version": "../../elsewhere"},
            "The model pointer s3://bucket/models/food/production does",
        ),
    ],
    ids=["absent", "not-json", "no-version", "escapes"],
)
def test_deploy_stops_with_a_clear_error_on_a_pointer_it_cannot_use(tmp_path, pointer, message):
    code, outputs, printed = name_the_image(tmp_path, "s3://bucket/models/food/production", pointer)
    assert code == 1
    assert f"::error::{message}" in printed
    assert outputs == {}  # nothing named, nothing built


def test_deploy_summary_records_the_version_it_released():
    summary = named(DEPLOY, "Summary")
    assert summary["env"]["MODEL"] == "${{ steps.stack.outputs.model }}"
    assert "Model: \\`$MODEL\\`" in summary["run"]
    notice = named(DEPLOY, "Stop here on a bootstrap stack")
    assert "(model $MODEL)" in notice["run"]


def test_deploy_releases_through_the_stack_then_smoke_tests_and_rolls_back_on_failure():
    names = order(steps(DEPLOY))
    release = named(DEPLOY, "Release the image (stack update)")
    smoke = named(DEPLOY, "Smoke test through the load balancer")
    rollback = named(DEPLOY, "Roll back to the previous image")
    assert release["run"] == '.github/scripts/release.sh "$IMAGE"'
    assert release["env"]["IMAGE"] == "${{ steps.stack.outputs.image }}"
    assert smoke["id"] == "smoke"
    assert smoke["run"].startswith('python3 infra/smoke.py --app "$URL"')
    assert rollback["if"] == "failure() && steps.smoke.outcome == 'failure'"
    assert rollback["env"]["PREVIOUS"] == "${{ steps.stack.outputs.previous }}"
    assert '.github/scripts/release.sh "$PREVIOUS"' in rollback["run"]
    assert names.index(release["name"]) < names.index(smoke["name"]) < names.index(rollback["name"])
    # Task definitions belong to the stack: the workflow never registers or renders them.
    text = DEPLOY.read_text()
    assert "amazon-ecs-deploy-task-definition" not in text
    assert "register-task-definition" not in text
    for step in (release, smoke):
        assert step["if"] == "steps.stack.outputs.bootstrap == 'false'"


def test_deploy_builds_the_training_variant_from_the_same_build_and_checks_it():
    builds = step_using(DEPLOY, "docker/build-push-action")
    (app,) = app_builds(builds)
    (training,) = [b for b in builds if b is not app]
    assert training["name"] == "Build the training variant"
    assert training["with"]["target"] == "training"  # the Dockerfile's root stage
    assert training["with"]["tags"] == "${{ steps.stack.outputs.training_image }}"
    assert training["with"]["load"] is True and training["with"]["push"] is False
    # The same context, model and build cache as the app image: only the user differs.
    for key in ("context", "build-args", "cache-from", "provenance", "sbom"):
        assert training["with"][key] == app["with"][key], key
    smoke = named(DEPLOY, "Smoke-run the training variant")
    run = smoke["run"]
    assert "--network none" in run  # as SageMaker's network isolation
    assert "--volume /opt/ml/model" in run  # a fresh root-owned volume where the model goes
    assert "python3 -m classifier.train --help" in run and "touch /opt/ml/model/" in run
    assert smoke["env"]["TRAINING_IMAGE"] == "${{ steps.stack.outputs.training_image }}"
    names = order(steps(DEPLOY))
    assert names.index("Build the image") < names.index("Build the training variant")
    assert names.index("Build the training variant") < names.index(smoke["name"])
    assert names.index(smoke["name"]) < names.index("Push the image")


def test_deploy_names_the_training_variant_beside_the_image(tmp_path):
    code, outputs, _ = name_the_image(tmp_path, "s3://bucket/models/food/2026-12-04/")
    assert code == 0
    assert outputs["training_image"] == outputs["image"] + "-training"


def test_a_deploy_that_pushed_only_the_app_image_is_not_taken_as_pushed(tmp_path):
    version = "s3://bucket/models/food/2026-12-04/"
    tags = tmp_path / "ecr-tags"
    tags.write_text(tag_of(version) + "\n")  # a run that stopped between the two pushes
    code, outputs, _ = name_the_image(tmp_path, version, ECR_TAGS=str(tags))
    assert (code, outputs["pushed"]) == (0, "false")
    tags.write_text(f"{tag_of(version)}\n{tag_of(version)}-training\n")
    code, outputs, _ = name_the_image(tmp_path, version, ECR_TAGS=str(tags))
    assert (code, outputs["pushed"]) == (0, "true")


STAND_IN_DOCKER = """#!/usr/bin/env bash
echo "docker $*" >> "$AWS_CALLS"
"""


def push(tmp_path, present: list[str]) -> tuple[int, list[str], str]:
    """Run deploy.yml's push step with stand-in `aws` and `docker`; ECR holds the tags
    ``present``. Returns its status, the pushes in order and what it printed."""
    image = "1234.dkr.ecr.us-east-1.amazonaws.com/dishlens:abc-123"
    tags = tmp_path / "ecr-tags"
    tags.write_text("".join(tag + "\n" for tag in present))
    env = stand_in_aws(
        tmp_path,
        STACK,
        ECR_TAGS=str(tags),
        IMAGE=image,
        TRAINING_IMAGE=image + "-training",
    )
    docker = tmp_path / "bin" / "docker"
    docker.write_text(STAND_IN_DOCKER)
    docker.chmod(0o755)
    code, _, printed = run_step(DEPLOY, "Push the image", tmp_path, env)
    calls = Path(env["AWS_CALLS"]).read_text().splitlines()
    for call in calls:
        if call.startswith("ecr describe-images"):
            assert "--repository-name dishlens " in call
    pushes = [c.rsplit(":", 1)[1] for c in calls if c.startswith("docker push")]
    return code, pushes, printed


def test_deploy_pushes_the_app_image_then_its_training_variant(tmp_path):
    assert push(tmp_path, [])[:2] == (0, ["abc-123", "abc-123-training"])


def test_a_rerun_after_a_push_that_stopped_half_way_pushes_only_what_is_missing(tmp_path):
    # Tags are immutable: pushing the app image's tag again would fail the re-run.
    code, pushes, printed = push(tmp_path, ["abc-123"])
    assert (code, pushes) == (0, ["abc-123-training"])
    assert "abc-123 is in ECR already" in printed


FAKE_AWS = """#!/usr/bin/env bash
echo "$*" >> "$AWS_CALLS"
case "$1 $2" in
  "cloudformation describe-stacks") cat "$STACK_JSON" ;;
  "cloudformation update-stack")
    if [ -n "$UPDATE_FAILS_WITH" ]; then echo "$UPDATE_FAILS_WITH" >&2; exit 254; fi ;;
  "s3 cp")
    if [ ! -f "$S3_OBJECT" ]; then echo "fatal error: An error occurred (404)" >&2; exit 1; fi
    cat "$S3_OBJECT" ;;
  "ecr describe-images")  # every tag is there, or only those listed in the file $ECR_TAGS
    last=${*: -1}
    if [ -n "$ECR_TAGS" ]; then grep -qxF "${last#imageTag=}" "$ECR_TAGS" || exit 254; fi ;;
esac
exit 0
"""


def stand_in_aws(tmp_path, stack: dict[str, Any], **env: str) -> dict[str, str]:
    """An environment with a stand-in `aws` first on PATH: it records its arguments in
    ``AWS_CALLS``, describes ``stack`` and prints ``S3_OBJECT`` for ``s3 cp``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "aws"
    fake.write_text(FAKE_AWS)
    fake.chmod(0o755)
    (tmp_path / "described.json").write_text(json.dumps({"Stacks": [stack]}))
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STACK_NAME": "dishlens",
        "RUNNER_TEMP": str(tmp_path),
        "AWS_CALLS": str(calls),
        "STACK_JSON": str(tmp_path / "described.json"),
        **env,
    }


def release(tmp_path, image: str, update_fails_with: str = "") -> tuple[int, list[str]]:
    """Run release.sh with a stand-in `aws` on PATH; returns its status and the aws calls."""
    stack = {
        "Parameters": [
            {"ParameterKey": "ImageUri", "ParameterValue": "repo:old"},
            {"ParameterKey": "ApiKey", "ParameterValue": "****"},
            {"ParameterKey": "MinTasks", "ParameterValue": "2"},
        ]
    }
    env = stand_in_aws(tmp_path, stack, UPDATE_FAILS_WITH=update_fails_with)
    result = subprocess.run(
        ["bash", str(SCRIPTS / "release.sh"), image], env=env, capture_output=True, text=True
    )
    return result.returncode, Path(env["AWS_CALLS"]).read_text().splitlines()


def test_release_changes_only_the_image_and_keeps_every_other_parameter(tmp_path):
    code, calls = release(tmp_path, "repo:new")
    assert code == 0
    (update,) = [c for c in calls if c.startswith("cloudformation update-stack")]
    assert "--use-previous-template" in update and "--capabilities CAPABILITY_IAM" in update
    parameters = json.loads(update.split("--parameters ", 1)[1])
    assert parameters == [
        {"ParameterKey": "ImageUri", "ParameterValue": "repo:new"},
        {"ParameterKey": "ApiKey", "UsePreviousValue": True},  # NoEcho values never leave AWS
        {"ParameterKey": "MinTasks", "UsePreviousValue": True},
    ]
    assert calls[-1] == "cloudformation wait stack-update-complete --stack-name dishlens"


def test_release_of_the_running_image_is_not_an_error_but_other_failures_are(tmp_path):
    code, calls = release(tmp_path, "repo:old", "ValidationError: No updates are to be performed.")
    assert code == 0
    assert not any("wait" in c for c in calls)
    code, _ = release(tmp_path, "repo:new", "AccessDenied: not allowed")
    assert code != 0


def test_dependabot_watches_the_base_image_the_actions_and_pip():
    config = yaml.safe_load(DEPENDABOT.read_text())
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(ecosystems) == {"docker", "github-actions", "pip"}
    for update in ecosystems.values():
        assert update["directory"] == "/"
        assert update["schedule"]["interval"] in {"daily", "weekly"}


# ---------------------------------------------------------------------------------------------
# retrain.yml: SageMaker training, then the gate


RETRAIN = ROOT / ".github" / "workflows" / "retrain.yml"


def test_retrain_runs_weekly_and_by_hand_with_least_permissions():
    workflow = load(RETRAIN)
    assert set(workflow["on"]) == {"workflow_dispatch", "schedule"}
    assert set(workflow["on"]["workflow_dispatch"]["inputs"]) == {
        "epochs",
        "instance-type",
        "instance-count",
        "feedback-weight",
    }
    (cron,) = [entry["cron"] for entry in workflow["on"]["schedule"]]
    assert cron.split()[2:] == ["*", "*", "1"]  # once a week
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["environment"]["name"] == "retrain"
    # Inputs reach the scripts through env only (no ${{ }} in a script: checked for all).
    assert job["env"]["INSTANCE_TYPE"] == "${{ inputs.instance-type || 'ml.c6i.8xlarge' }}"
    assert job["env"]["INSTANCE_COUNT"] == "${{ inputs.instance-count || 1 }}"


def test_retrain_authenticates_with_oidc_for_as_long_as_the_role_and_the_job_allow():
    from tests.infra.common import props

    (credentials,) = step_using(RETRAIN, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_RETRAIN_ROLE_ARN }}"
    duration = int(credentials["with"]["role-duration-seconds"])
    assert duration == props("RetrainRole")["MaxSessionDuration"]
    (job,) = load(RETRAIN)["jobs"].values()
    assert job["timeout-minutes"] * 60 <= duration
    # The wait (training plus the hour the script allows for start-up and upload) and the
    # gate fit in the job.
    assert int(job["env"]["MAX_RUNTIME"]) + 3600 < job["timeout-minutes"] * 60 - 15 * 60
    text = RETRAIN.read_text()
    assert "aws-access-key-id" not in text and "secrets." not in text


def test_retrain_trains_then_fetches_the_evaluation_set_then_gates():
    names = order(steps(RETRAIN))
    assert names.index("Read the stack and name the job") < names.index("Train on SageMaker")
    assert names.index("Train on SageMaker") < names.index("Fetch the fixed evaluation set")
    assert names.index("Fetch the fixed evaluation set") < names.index("Gate and promote")
    fetch = named(RETRAIN, "Fetch the fixed evaluation set")["run"]
    assert fetch == 'aws s3 sync --only-show-errors "$EVAL_DATA_URI" "$RUNNER_TEMP/eval"'
    stop = named(RETRAIN, "Stop the training job (run cancelled)")
    assert stop["if"].startswith("cancelled()")
    assert stop["run"] == 'aws sagemaker stop-training-job --training-job-name "$JOB"'


def command_of(step: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The step's ``python`` command as bash would run it with ``env`` (its arguments, up to
    any redirection)."""
    import shlex

    lines = step["run"].replace("\\\n", " ").splitlines()
    (script,) = [line.strip() for line in lines if line.strip().startswith("python ")]
    script = re.split(r" \d?> | \|\| ", script)[0]
    expanded = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {script}"],
        env={**os.environ, **env},
        capture_output=True,
        check=True,
    ).stdout
    words = expanded.decode().split("\0")[:-1]
    assert words[:1] == ["python"], shlex.join(words)
    return words[1:]


APP_IMAGE = "1234.dkr.ecr.us-east-1.amazonaws.com/dishlens:abc-123"  # the stack's ImageUri
PLAN = {
    "RUNNER_TEMP": "/tmp/runner",
    "IMAGE": APP_IMAGE + "-training",  # what the job runs
    "ROLE": "arn:aws:iam::1234:role/dishlens-TrainingRole-X",
    "BUCKET": "dishlens-bucket",
    "PROJECT": "dishlens",
    "JOB": "dishlens-retrain-20261207-030000",
    "NAME": "food101-lite0",
    "TRAINING_DATA_URI": "s3://dishlens-bucket/datasets/food101/",
    "FEEDBACK_WEIGHT": "2",
    "EPOCHS": "5",
    "INSTANCE_TYPE": "ml.c6i.8xlarge",
    "INSTANCE_COUNT": "2",
    "MAX_RUNTIME": "14400",
    "REGISTRY": "s3://dishlens-bucket/models/food101-lite0/",
    "VERSION": "retrain-20261207-030000",
}


def test_retrain_calls_the_scripts_with_arguments_they_accept():
    from tests.scripts.conftest import load_script

    start = load_script("start_retraining")
    argv = command_of(named(RETRAIN, "Train on SageMaker"), PLAN)
    assert argv[0] == "scripts/start_retraining.py"
    job = start.job_from_args(start.get_args_parser().parse_args(argv[1:]))
    assert (job.name, job.image, job.role_arn) == (PLAN["JOB"], PLAN["IMAGE"], PLAN["ROLE"])
    assert job.feedback == "s3://dishlens-bucket/feedback/"
    assert job.output == "s3://dishlens-bucket/training/"
    assert (job.epochs, job.feedback_weight, job.max_runtime) == (5, 2.0, 14400)
    assert job.instance_count == 2

    publish = load_script("publish_model")
    argv = command_of(named(RETRAIN, "Gate and promote"), PLAN)
    args = publish.get_args_parser().parse_args(argv[1:])
    assert str(args.model_dir) == "/tmp/runner/candidate"  # what start_retraining fetched
    assert args.uri == "s3://dishlens-bucket/models/food101-lite0/retrain-20261207-030000/"
    assert args.promote and str(args.eval_data) == "/tmp/runner/eval"


RETRAIN_STACK = {
    "Parameters": [
        {"ParameterKey": "ImageUri", "ParameterValue": APP_IMAGE},
        {"ParameterKey": "ProjectName", "ParameterValue": "dishlens"},
    ],
    "Outputs": [
        {"OutputKey": "TrainingRoleArn", "OutputValue": PLAN["ROLE"]},
        {"OutputKey": "BucketName", "OutputValue": PLAN["BUCKET"]},
    ],
}


def plan_retraining(tmp_path, stack: dict[str, Any], **env: str) -> tuple[int, dict, str]:
    """Run retrain.yml's first step with a stand-in `aws`."""
    variables = {
        "MODEL_URI": "s3://dishlens-bucket/models/food101-lite0/production",
        "TRAINING_DATA_URI": PLAN["TRAINING_DATA_URI"],
        "EVAL_DATA_URI": "s3://dishlens-bucket/datasets/eval/",
    }
    env = stand_in_aws(tmp_path, stack, **(variables | env))
    return run_step(RETRAIN, "Read the stack and name the job", tmp_path, env)


def test_retrain_names_a_job_the_role_may_start_and_a_new_version_in_the_registry(tmp_path):
    code, plan, _ = plan_retraining(tmp_path, RETRAIN_STACK)
    assert code == 0
    # The training variant deploy.yml pushed beside the image the stack runs (same commit,
    # same model), not the app image itself.
    assert plan["image"] == f"{APP_IMAGE}-training"
    assert (plan["role"], plan["bucket"]) == (PLAN["ROLE"], PLAN["BUCKET"])
    assert re.fullmatch(r"dishlens-retrain-\d{8}-\d{6}", plan["job"])
    assert plan["version"] == "retrain-" + plan["job"].removeprefix("dishlens-retrain-")
    assert plan["registry"] == "s3://dishlens-bucket/models/food101-lite0/"
    assert plan["name"] == "food101-lite0"


@pytest.mark.parametrize(
    ("stack", "env", "message"),
    [
        (RETRAIN_STACK, {"EVAL_DATA_URI": ""}, "Set the repository variable EVAL_DATA_URI"),
        (
            RETRAIN_STACK,
            {"MODEL_URI": "s3://b/models/food/2026-12-04/"},
            "MODEL_URI must name a registry's pointer",
        ),
        (
            {**RETRAIN_STACK, "Parameters": [{"ParameterKey": "ImageUri", "ParameterValue": ""}]},
            {},
            "The stack runs no image yet",
        ),
    ],
    ids=["no-eval-set", "not-a-pointer", "bootstrap-stack"],
)
def test_retrain_stops_with_a_clear_error_before_starting_anything(tmp_path, stack, env, message):
    code, plan, printed = plan_retraining(tmp_path, stack, **env)
    assert code == 1 and plan == {}
    assert f"::error::{message}" in printed


STAND_IN_PYTHON = """#!/usr/bin/env bash
printf '%s' "$GATE_STDOUT"
printf '%s' "$GATE_STDERR" >&2
exit "$GATE_STATUS"
"""


def gate(tmp_path, status: int, stderr: str) -> tuple[int, dict, str]:
    """Run the gate step with a stand-in `python` answering as publish_model.py would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python"
    python.write_text(STAND_IN_PYTHON)
    python.chmod(0o755)
    env = {
        **PLAN,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path),
        "GATE_STATUS": str(status),
        "GATE_STDOUT": '{"accepted": false}',
        "GATE_STDERR": stderr,
    }
    return run_step(RETRAIN, "Gate and promote", tmp_path, env)


def test_a_refused_candidate_ends_the_run_with_a_warning_and_other_failures_fail_it(tmp_path):
    assert gate(tmp_path, 0, "")[:2] == (0, {"promoted": "true"})
    refusal = "error: s3://b/models/f/v/ was not promoted: worse than production beyond noise.\n"
    code, outputs, printed = gate(tmp_path, 1, refusal)
    assert (code, outputs) == (0, {"promoted": "false"})
    assert "::warning::The gate refused the candidate" in printed
    assert refusal.strip() in printed  # the reasons reach the log (and the summary)
    code, outputs, printed = gate(tmp_path, 1, "error: Could not read the model pointer …\n")
    assert (code, outputs) == (1, {})
    assert "::error::The gate could not judge the candidate" in printed
