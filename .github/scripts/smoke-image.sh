#!/usr/bin/env bash
# Run an image the way ECS runs it - read-only root filesystem, a fresh volume on /tmp (which
# Docker, like Fargate, fills from the image's VOLUME), no capabilities, an init process - once
# as the app (its default command) and once as the API, then smoke-test both with
# infra/smoke.py: the app answers its health path, the API classifies a photo.
#
#   .github/scripts/smoke-image.sh IMAGE
set -euo pipefail

image=$1
ecs_like=(--detach --read-only --volume /tmp --cap-drop ALL --init
  --security-opt no-new-privileges)

app=$(docker run "${ecs_like[@]}" --publish 127.0.0.1:8501:8501 "$image")
api=$(docker run "${ecs_like[@]}" --publish 127.0.0.1:8000:8000 \
  --env HEALTHCHECK_URL=http://127.0.0.1:8000/healthz "$image" \
  uvicorn api.main:app --host 0.0.0.0 --port 8000 --timeout-keep-alive 3660)

finish() {
  status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- app log"; docker logs "$app" 2>&1 | tail -n 50
    echo "--- api log"; docker logs "$api" 2>&1 | tail -n 50
  fi
  docker rm --force --volumes "$app" "$api" > /dev/null
  exit "$status"
}
trap finish EXIT

python3 infra/smoke.py --app http://127.0.0.1:8501 --api http://127.0.0.1:8000 --readiness \
  --timeout 300
