"""The GitHub workflows, read as YAML: triggers, permissions, pinned actions, and the steps
issue 7 asks for. Their run scripts are checked with `bash -n`."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.infra.common import ROOT, WORKFLOWS

CI = ROOT / ".github" / "workflows" / "ci.yml"
DEPLOY = ROOT / ".github" / "workflows" / "deploy.yml"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def load(path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as true
    return workflow


def steps(path) -> list[dict[str, Any]]:
    return [step for job in load(path)["jobs"].values() for step in job["steps"]]


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


def test_deploy_runs_on_main_with_least_permissions_and_one_at_a_time():
    workflow = load(DEPLOY)
    assert workflow["on"] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["environment"]["name"] == "production"
    assert job["if"] == "github.ref == 'refs/heads/main'"


def test_deploy_authenticates_with_oidc_only():
    (credentials,) = step_using(DEPLOY, "aws-actions/configure-aws-credentials")
    assert set(credentials["with"]) == {"role-to-assume", "aws-region"}
    assert "aws-access-key-id" not in DEPLOY.read_text()
    assert "secrets." not in DEPLOY.read_text()


def test_deploy_builds_the_verified_model_into_a_sha_tagged_image():
    script = runs(DEPLOY)
    assert 'python scripts/fetch_model.py "$MODEL_URI" model' in script
    (build,) = step_using(DEPLOY, "docker/build-push-action")
    assert build["with"]["context"] == "."  # the path context, which holds model/
    assert build["with"]["build-args"] == "MODEL_DIR=model"
    assert build["with"]["tags"].endswith(":${{ github.sha }}")
    assert "latest" not in build["with"]["tags"]
    assert build["with"]["cache-from"].startswith("type=gha")
    assert build["with"]["cache-to"].startswith("type=gha")
    assert step_using(DEPLOY, "docker/setup-buildx-action")
    order = [s.get("name") or s["uses"] for s in steps(DEPLOY)]
    assert order.index("Fetch and verify the model") < order.index("Build and push")


def test_deploy_renders_and_deploys_both_services_and_waits():
    renders = step_using(DEPLOY, "aws-actions/amazon-ecs-render-task-definition")
    assert sorted(r["with"]["container-name"] for r in renders) == ["api", "app"]
    for render in renders:
        assert render["with"]["image"].endswith(":${{ github.sha }}")
    deploys = step_using(DEPLOY, "aws-actions/amazon-ecs-deploy-task-definition")
    assert len(deploys) == 2
    for deploy in deploys:
        assert deploy["with"]["wait-for-service-stability"] is True


def test_deploy_verifies_the_new_revision_and_the_health_endpoint():
    (verify,) = [s for s in steps(DEPLOY) if s.get("name") == "Verify the new revision serves"]
    assert verify["env"]["APP_REVISION"] == "${{ steps.app-deploy.outputs.task-definition-arn }}"
    assert verify["env"]["API_REVISION"] == "${{ steps.api-deploy.outputs.task-definition-arn }}"
    assert ".taskDefinition == $want" in verify["run"]
    assert "/_stcore/health" in verify["run"]
