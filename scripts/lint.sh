#!/usr/bin/env bash
# Every linter DishLens uses, each run once, with the flags CI enforces. Developers run this;
# .ci/run (which the CI workflow calls) runs it before the tests. Exits non-zero on the first
# linter that finds anything.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; "$@"; }

step ruff check .
step ruff format --check .
step mypy  # the packages, benchmarks and scripts: [tool.mypy] in pyproject.toml
step cfn-lint --include-checks I -- infra/*.yaml
step hadolint Dockerfile
step zizmor --offline --persona pedantic .github/workflows
step check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
step actionlint .github/workflows/*.yml
printf '\nlint: all clean\n'
