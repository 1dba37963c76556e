"""The linters CI runs, run here too: each must find nothing at all."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.infra.common import ROOT, TEMPLATES, WORKFLOWS


def lint(*command: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(command[0]) is None:
        pytest.fail(f"{command[0]} is not installed (requirements-dev.txt)")
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)


def test_cfn_lint_finds_no_errors_warnings_or_notes():
    result = lint("cfn-lint", "--include-checks", "I", "--", *map(str, TEMPLATES))
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_hadolint_passes_the_dockerfile():
    result = lint("hadolint", "Dockerfile")
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_zizmor_finds_nothing_in_the_workflows():
    result = lint("zizmor", "--offline", "--persona", "pedantic", ".github/workflows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout


def test_workflows_match_the_github_workflow_schema():
    result = lint(
        "check-jsonschema",
        "--builtin-schema",
        "vendor.github-workflows",
        *map(str, WORKFLOWS),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_passes_the_workflows():
    result = lint("actionlint", *map(str, WORKFLOWS))
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_dependabot_config_matches_its_schema():
    result = lint(
        "check-jsonschema",
        "--builtin-schema",
        "vendor.dependabot",
        str(ROOT / ".github" / "dependabot.yml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
