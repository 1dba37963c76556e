# syntax=docker/dockerfile:1
# DishLens image: the Streamlit app (default command) and the JSON API (same image, command
# `uvicorn api.main:app --host 0.0.0.0 --port 8000`).
#
#   docker build -t dishlens .                              # bundles the committed model
#   docker build --build-arg MODEL_DIR=model -t dishlens .  # bundles model/ (deploy.yml fills
#                                                           # it with scripts/fetch_model.py)
#   docker run --rm -p 8501:8501 --read-only -v /tmp dishlens
#   docker build --target training -t dishlens:training .   # the SageMaker variant (root)
#
# The default target (the last stage, `app`) is the runtime image, unprivileged; `training` is
# the same image as root, for SageMaker training jobs only (see its stage).
#
# The base image is pinned by digest (tag kept for people); Dependabot's docker ecosystem
# (.github/dependabot.yml) proposes the new digest when python:3.11-slim is rebuilt. Both
# FROM lines use the same one.

# ---------------------------------------------------------------------------------------------
# BUILDER: a virtual environment with CPU-only torch, then the app tree with bytecode compiled
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv

# torch and torchvision come from the PyTorch CPU wheel index (no CUDA libraries, ~1.5 GB
# smaller), at the versions requirements.txt pins; everything else from the ordinary index.
COPY requirements.txt /tmp/requirements.txt
RUN grep -E '^(torch|torchvision)==' /tmp/requirements.txt > /tmp/requirements-torch.txt \
    && grep -vE '^(torch|torchvision)==' /tmp/requirements.txt > /tmp/requirements-rest.txt \
    && pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        -r /tmp/requirements-torch.txt \
    && pip install --no-cache-dir -r /tmp/requirements-rest.txt

WORKDIR /app
# README.m[d]: the README is optional (the app offers it when present); app.py is not.
COPY app.py app_support.py launch_app.py README.m[d] ./
COPY .streamlit/config.toml .streamlit/config.toml
COPY api/ api/
COPY classifier/ classifier/
COPY dishlens/ dishlens/
COPY intake/ intake/
COPY llm_client/ llm_client/
# The model the image serves; the default is the committed one (the fallback).
ARG MODEL_DIR=models/food101-lite0
COPY ${MODEL_DIR}/ model/
# Bytecode now, because the root filesystem is read-only at run time; files readable by all,
# writable by none but root (a checkout may carry 0600 files).
RUN python -m compileall -q /app && chmod -R a+rX,go-w /app

# ---------------------------------------------------------------------------------------------
# RUNTIME: no compilers, no pip cache, no tests; runs as an unprivileged user
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS runtime

# tcmalloc in place of glibc's malloc: oneDNN allocates and frees small blocks around every
# convolution (a tiny one took 41 us a call on glibc's, 22 on tcmalloc). Measured on 2 cores
# with benchmarks/bench_allocator.py (8 rounds in turn): 1.11x the photos/s in the app's shape
# (one photo, 2 threads), 1.18x in the API workers' (batches of 4, 2 callers), 1.26x one photo
# on one thread; tcmalloc was faster in 23 of the 24 pairs.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libtcmalloc-minimal4 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 dishlens \
    && useradd --system --uid 10001 --gid dishlens --no-create-home --home-dir /tmp/home \
        --shell /usr/sbin/nologin -l dishlens

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app

# Everything DishLens, Python, Streamlit, matplotlib and huggingface_hub write goes into
# directories under /tmp that UID 10001 owns: the only writable path when the root filesystem
# is read-only. ECS (Fargate) mounts a task volume on /tmp, root-owned 0755, which UID 10001
# could not write; declaring the VOLUME makes Fargate (and Docker) first copy into it what the
# image holds there, these directories with their owner. TMPDIR moves temporary files (upload
# spooling, downloads) off the volume's root for the same reason.
ENV PATH=/opt/venv/bin:$PATH \
    LD_PRELOAD=libtcmalloc_minimal.so.4 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp/home \
    TMPDIR=/tmp/scratch \
    MPLCONFIGDIR=/tmp/matplotlib \
    HF_HOME=/tmp/huggingface \
    MODEL_URI=/app/model \
    MODEL_CACHE_DIR=/tmp/models \
    FEEDBACK_URI=/tmp/feedback \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    HEALTHCHECK_URL=http://127.0.0.1:8501/_stcore/health
RUN install -d -o 10001 -g 10001 -m 0700 \
        /tmp/home /tmp/scratch /tmp/matplotlib /tmp/huggingface /tmp/models /tmp/feedback \
    && chmod 1777 /tmp
VOLUME ["/tmp"]

USER 10001:10001
EXPOSE 8501
# Docker (not ECS, whose load balancer checks the same path) runs this; for the API container
# set HEALTHCHECK_URL=http://127.0.0.1:8000/healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]
# The launcher loads the model before Streamlit listens, so the health check answers only once
# the model is ready and the first visitor does not wait for it.
CMD ["python", "launch_app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]

# ---------------------------------------------------------------------------------------------
# TRAINING: the runtime image as root, for SageMaker training jobs (`docker build --target
# training`; deploy.yml pushes it as <tag>-training, scripts/start_retraining.py runs it).
# SageMaker mounts /opt/ml/{input,model,output,checkpoints} owned by root at run time, keeps
# the image's USER and has no setting to choose another: as UID 10001 a job would most likely
# fail to write /opt/ml/model (reported for other non-root images). Nothing else changes: no
# new layer, the same model at /app/model, the same ENV.
FROM runtime AS training
# hadolint ignore=DL3002
USER 0:0

# ---------------------------------------------------------------------------------------------
# APP: the default target (a plain `docker build .` builds the last stage), the runtime image
# unchanged, so the app and the API never run as root.
FROM runtime AS app
