#!/usr/bin/env bash
# Release an image: update the stack with its previous template and parameters, ImageUri
# excepted, and wait. The stack owns the task definitions, so CloudFormation registers the new
# revisions and rolls both services; a rollout the circuit breaker stops fails the update, and
# CloudFormation puts the stack back as it was. deploy.yml uses it to release and to roll back.
#
#   STACK_NAME=dishlens .github/scripts/release.sh IMAGE_URI
set -euo pipefail

image=$1
: "${STACK_NAME:?set STACK_NAME}"

aws cloudformation describe-stacks --stack-name "$STACK_NAME" --output json > "${RUNNER_TEMP:-/tmp}/stack.json"
parameters=$(jq -c --arg image "$image" '[.Stacks[0].Parameters[]
  | if .ParameterKey == "ImageUri" then {ParameterKey, ParameterValue: $image}
    else {ParameterKey, UsePreviousValue: true} end]' "${RUNNER_TEMP:-/tmp}/stack.json")

if ! output=$(aws cloudformation update-stack --stack-name "$STACK_NAME" \
  --use-previous-template --capabilities CAPABILITY_IAM --parameters "$parameters" 2>&1); then
  if [[ "$output" == *"No updates are to be performed"* ]]; then
    echo "The stack already runs $image."
    exit 0
  fi
  echo "$output" >&2
  exit 1
fi
echo "Updating $STACK_NAME to $image ..."
aws cloudformation wait stack-update-complete --stack-name "$STACK_NAME"
