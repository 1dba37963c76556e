"""Retrain DishLens as an Amazon SageMaker training job, wait for it and fetch the model.

    python scripts/start_retraining.py --out runs/retrained \\
        --image ACCOUNT.dkr.ecr.REGION.amazonaws.com/dishlens:TAG-training \\
        --role-arn arn:aws:iam::ACCOUNT:role/STACK-TrainingRole-… \\
        --data s3://BUCKET/datasets/food101/ --feedback s3://BUCKET/feedback/ \\
        --output s3://BUCKET/training/ --model-name food101-lite0

then gate and publish what it fetched (``.github/workflows/retrain.yml`` does both)::

    python scripts/publish_model.py runs/retrained s3://BUCKET/models/NAME/VERSION/ \\
        --promote --eval-data EVAL_FOLDER

Decisions:

- **The project's own image, as root.** The job runs the training variant of the image the
  app runs: the Dockerfile's ``training`` stage, the same layers, venv and model with
  ``USER 0:0``, which ``deploy.yml`` pushes as ``TAG-training`` (:data:`TRAINING_TAG_SUFFIX`)
  beside every app image ``TAG``. SageMaker mounts ``/opt/ml/input``, ``/opt/ml/model``,
  ``/opt/ml/output`` and ``/opt/ml/checkpoints`` owned by root, keeps the image's USER and
  has no request field to choose another, so the app image (UID 10001) would most likely fail
  to write its model (reported for other non-root images); the app image itself stays
  unprivileged. ``--image`` naming anything else draws a warning, not a refusal (your own
  root image may be named otherwise). Not yet run in a real AWS account.
- **Its own entrypoint.** ``python3 -m classifier.train`` is the container's entrypoint
  (``ContainerEntrypoint``/``ContainerArguments``; no SageMaker toolkit in the image). The
  image carries CPU builds of torch, so it suits CPU instances: the default is
  ``ml.c6i.8xlarge`` (32 vCPUs, 64 GiB). A GPU instance would leave its GPUs idle until a CUDA
  build of the image exists.
- **Several instances through a launcher.** ``--instance-count`` (1 to
  :data:`MAX_INSTANCES`) sets ``InstanceCount``. With more than one, the entrypoint becomes
  ``python3 -m classifier.launch_sagemaker --`` with the same training arguments: it reads
  SageMaker's ``/opt/ml/input/config/resourceconfig.json`` on each instance and runs
  ``torchrun --nnodes N --node_rank I --master_addr FIRST_HOST`` (one process per CPU
  instance, gloo). ``--batch-size`` stays the global batch, so the number of processes must
  divide it. Only rank 0, on the first host, writes ``/opt/ml/model``; SageMaker gathers the
  model folders of all instances into the one ``model.tar.gz``, so it holds rank 0's files.
  One instance keeps ``python3 -m classifier.train`` as the entrypoint, exactly as before.
  Several instances have not run in a real AWS account.
- **Data as S3 channels, no network.** The training photos (``train``) and the feedback
  (``feedback``) are File-mode ``S3Prefix`` channels, which SageMaker copies to
  ``/opt/ml/input/data/CHANNEL`` before the container starts. The container needs no network
  (``EnableNetworkIsolation``): training starts from the model baked into the image
  (``--init-from /app/model``, the production model when it was deployed), so nothing
  downloads weights. An empty feedback prefix (a new stack) is left out: SageMaker refuses a
  channel with no objects.
- **The model comes back as a tarball.** SageMaker tars ``/opt/ml/model`` (``--out``) to
  ``S3OutputPath/JOB/output/model.tar.gz``; this script downloads it, unpacks it with
  tarfile's ``data`` filter (no member may land outside the folder) and checks it holds a
  model card. The weights' checksum is checked by ``publish_model.py`` before anything is
  published.
- **No checkpoints or spot capacity.** A job that fails starts over; ``--max-runtime`` bounds
  what it may cost.

Exit status: 0 the model is in ``--out``; 1 the job could not start, failed, was stopped or its
model could not be fetched; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python scripts/start_retraining.py`
    sys.path.insert(0, str(ROOT))

from classifier.artifact import CARD_FILE  # noqa: E402
from classifier.errors import ModelDownloadError, TrainingJobError  # noqa: E402
from classifier.s3 import download_object, split_uri  # noqa: E402
from dishlens.errors import DishLensError  # noqa: E402

logger = logging.getLogger("start_retraining")

ENTRYPOINT = ["python3", "-m", "classifier.train"]
# Several instances: classifier.launch_sagemaker maps resourceconfig.json onto torchrun; "--"
# ends its own options, so the training arguments follow unchanged.
CLUSTER_ENTRYPOINT = ["python3", "-m", "classifier.launch_sagemaker", "--"]
MAX_INSTANCES = 16
TRAINING_TAG_SUFFIX = "-training"  # deploy.yml's tag for the Dockerfile's `training` stage
CHANNELS = "/opt/ml/input/data"
MODEL_OUT = "/opt/ml/model"
DEFAULT_INSTANCE = "ml.c6i.8xlarge"
DEFAULT_TRAIN_ARGS = "--fix-res --frozen-blocks 12"
_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_MAX_RUNTIME = 28 * 24 * 3600  # SageMaker's upper bound for MaxRuntimeInSeconds
_WAIT_MARGIN = 3600  # instance start, data download and model upload come on top of the runtime


@dataclass(frozen=True)
class RetrainingJob:
    """What one SageMaker training job needs; :func:`training_request` turns it into the
    ``CreateTrainingJob`` request."""

    name: str
    image: str
    role_arn: str
    data: str
    output: str
    feedback: str | None = None
    feedback_weight: float = 1.0
    model_name: str = "dishlens-food"
    base_model: str = "/app/model"
    epochs: int = 5
    train_args: tuple[str, ...] = tuple(shlex.split(DEFAULT_TRAIN_ARGS))
    instance_type: str = DEFAULT_INSTANCE
    instance_count: int = 1
    volume_gb: int = 50
    max_runtime: int = 5 * 3600


def training_request(job: RetrainingJob) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request (keyword arguments of boto3's ``create_training_job``)."""
    channels = [_channel("train", job.data)]
    arguments = ["--data", f"{CHANNELS}/train", "--out", MODEL_OUT]
    arguments += ["--init-from", job.base_model, "--name", job.model_name]
    arguments += ["--epochs", str(job.epochs)]
    if job.feedback:
        channels.append(_channel("feedback", job.feedback))
        arguments += ["--extra-data", f"{CHANNELS}/feedback:{job.feedback_weight:g}"]
    return {
        "TrainingJobName": job.name,
        "RoleArn": job.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": job.image,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ENTRYPOINT if job.instance_count == 1 else CLUSTER_ENTRYPOINT,
            "ContainerArguments": arguments + list(job.train_args),
        },
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": job.output},
        "ResourceConfig": {
            "InstanceType": job.instance_type,
            "InstanceCount": job.instance_count,
            "VolumeSizeInGB": job.volume_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_runtime},
        # Isolation stays on with several instances: SageMaker's API reference for
        # EnableNetworkIsolation excepts calls between the peers of a distributed training
        # cluster, and its guide "Run Training and Inference Containers in Internet-Free Mode"
        # says a multi-instance job's traffic is limited to each container's peers. The
        # training role's policy requires isolation (infra/dishlens.yaml). Inter-container
        # traffic encryption stays off: the instances exchange gradients, not photos, and
        # SageMaker's guide on it warns it lengthens distributed training.
        "EnableNetworkIsolation": True,
    }


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def start(job: RetrainingJob) -> str:
    """Start the job; returns its ARN.

    Raises:
        TrainingJobError: SageMaker refused the request (the detail goes to the log).
    """
    import boto3

    refused = (
        f"SageMaker did not start the training job {job.name}; check the role, the image and "
        "the instance type (the log above has SageMaker's answer)."
    )
    with _aws_errors(job.name, refused):
        response = boto3.client("sagemaker").create_training_job(**training_request(job))
    print(f"started {job.name} on {job.instance_count} x {job.instance_type}")
    return str(response["TrainingJobArn"])


def wait(
    name: str,
    *,
    poll_seconds: float = 60.0,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll the job until it ends; returns its description once ``Completed``.

    Raises:
        TrainingJobError: it failed (with SageMaker's ``FailureReason``), was stopped, cannot
            be described, or is still running after ``timeout`` seconds (it keeps running).
    """
    import boto3

    client = boto3.client("sagemaker")
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = None
    while True:
        description = _describe(client, name)
        status = description["TrainingJobStatus"]
        progress = (status, description.get("SecondaryStatus"))
        if progress != shown:
            print(f"{name}: {status} ({progress[1]})", flush=True)
            shown = progress
        if status == "Completed":
            return description
        if status in {"Failed", "Stopped"}:
            raise _ended_early(name, status, description)
        if deadline is not None and time.monotonic() >= deadline:
            raise TrainingJobError(
                f"The training job {name} has not finished after {timeout:.0f} s; it is still "
                f"running (aws sagemaker stop-training-job --training-job-name {name} stops it).",
                name,
            )
        sleep(poll_seconds)


def _describe(client: Any, name: str) -> dict[str, Any]:
    unreadable = (
        f"Could not read the state of the training job {name}; check that it exists in this "
        "region and the AWS credentials."
    )
    with _aws_errors(name, unreadable):
        return dict(client.describe_training_job(TrainingJobName=name))


@contextmanager
def _aws_errors(job: str, message: str) -> Iterator[None]:
    """Translate boto3's errors into a :class:`TrainingJobError` saying ``message``; AWS's own
    words go to the log."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as error:
        logger.error("%s (%s)", message, error)
        raise TrainingJobError(message, job) from error


def _ended_early(name: str, status: str, description: dict[str, Any]) -> TrainingJobError:
    reason = description.get("FailureReason")
    if status == "Failed":
        message = f"The training job {name} failed: {reason or 'SageMaker gave no reason'}."
    else:
        limit = description.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        message = (
            f"The training job {name} was stopped before it finished (stopped by hand, or at "
            f"its limit of {limit} s of training)."
        )
    return TrainingJobError(message + " No model was fetched.", name, reason)


def download_model(artifact_uri: str, out: Path) -> Path:
    """Download the job's ``model.tar.gz`` and unpack it into ``out`` (absent or empty).

    Raises:
        ModelDownloadError: ``out`` holds files, S3 failed, or the archive is not a DishLens
            model (not a tarball, a member outside the folder, no model card).
    """
    if out.is_dir() and any(out.iterdir()):
        raise ModelDownloadError(f"{out} is not empty; choose a new folder for the model.")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".retrained-", dir=out.parent) as staging:
        archive = download_object(artifact_uri, Path(staging) / "model.tar.gz")
        unpacked = _unpack(archive, Path(staging) / "model", artifact_uri)
        out.mkdir(exist_ok=True)
        for path in unpacked.iterdir():
            shutil.move(str(path), out / path.name)
    return out


def _unpack(archive: Path, target: Path, uri: str) -> Path:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter="data")
    except tarfile.FilterError as error:
        logger.error("unpack %s: %s", uri, error)
        raise ModelDownloadError(
            f"The trained model {uri} holds a file that points outside its folder; refusing it."
        ) from error
    except (tarfile.TarError, OSError) as error:
        logger.error("unpack %s: %s", uri, error)
        raise ModelDownloadError(
            f"The trained model {uri} is not a readable tar.gz archive."
        ) from error
    if not (target / CARD_FILE).is_file():
        raise ModelDownloadError(
            f"The trained model {uri} has no {CARD_FILE}: the job wrote no DishLens model."
        )
    return target


def without_empty_feedback(job: RetrainingJob) -> RetrainingJob:
    """The job without its feedback channel when the prefix holds nothing yet."""
    import boto3

    if job.feedback is None:
        return job
    bucket, prefix = split_uri(job.feedback)
    unlisted = f"Could not list the feedback at {job.feedback}; check the bucket and credentials."
    with _aws_errors(job.name, unlisted):
        listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    if listed.get("KeyCount", 0):
        return job
    print(f"{job.feedback} holds no answers yet: training on {job.data} alone")
    return replace(job, feedback=None)


def retrain(job: RetrainingJob, out: Path, *, poll_seconds: float = 60.0) -> Path:
    """Start ``job``, wait for it (up to its runtime limit and an hour), fetch its model into
    ``out``; returns ``out``.

    Raises:
        TrainingJobError: as :func:`start` and :func:`wait`.
        ModelDownloadError: as :func:`download_model`.
    """
    job = without_empty_feedback(job)
    start(job)
    description = wait(job.name, poll_seconds=poll_seconds, timeout=job.max_runtime + _WAIT_MARGIN)
    artifact = description["ModelArtifacts"]["S3ModelArtifacts"]
    download_model(artifact, out)
    print(f"fetched {artifact} into {out}")
    return out


# ---------------------------------------------------------------------------------------------
# THE COMMAND LINE


def job_name(project: str, now: datetime | None = None) -> str:
    """``PROJECT-retrain-YYYYmmdd-HHMMSS`` (UTC): the IAM policy lets GitHub start only jobs
    whose names begin with the stack's ProjectName."""
    return f"{project}-retrain-{(now or datetime.now(UTC)):%Y%m%d-%H%M%S}"


def _s3_prefix(text: str) -> str:
    if not text.startswith("s3://") or len(text) <= len("s3://"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an s3://BUCKET/PREFIX/ URI")
    return text if text.endswith("/") else text + "/"


def _instance_type(text: str) -> str:
    if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a SageMaker instance type (such as {DEFAULT_INSTANCE})"
        )
    return text


def _bounded(low: float, high: float, kind: type = int) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low:g} and {high:g}")
        return value

    return parse


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Retrain DishLens as a SageMaker training job and fetch the model.",
        add_help=add_help,
    )
    parser.add_argument("--out", type=Path, required=True, help="new folder for the model")
    parser.add_argument(
        "--image",
        required=True,
        help=f"the training variant of the project's image in ECR (URI:TAG{TRAINING_TAG_SUFFIX})",
    )
    parser.add_argument("--role-arn", required=True, help="SageMaker execution role (stack)")
    parser.add_argument(
        "--data", type=_s3_prefix, required=True, help="Food-101-layout photos, s3:// prefix"
    )
    parser.add_argument(
        "--output", type=_s3_prefix, required=True, help="where SageMaker puts model.tar.gz"
    )
    parser.add_argument("--feedback", type=_s3_prefix, help="the app's answers, s3:// prefix")
    parser.add_argument(
        "--feedback-weight",
        type=_bounded(0.01, 100.0, float),
        default=1.0,
        help="each feedback photo drawn this many times as often as a --data photo (default: 1)",
    )
    parser.add_argument("--model-name", default="dishlens-food", help="name in the model card")
    parser.add_argument(
        "--base-model",
        default="/app/model",
        help="model folder in the image to start from (default: /app/model, the one it serves)",
    )
    parser.add_argument("--epochs", type=_bounded(1, 1000), default=5, help="(default: 5)")
    parser.add_argument(
        "--train-args",
        default=DEFAULT_TRAIN_ARGS,
        help=f"more classifier.train options (default: {DEFAULT_TRAIN_ARGS!r})",
    )
    parser.add_argument(
        "--instance-type",
        type=_instance_type,
        default=DEFAULT_INSTANCE,
        help=f"a CPU instance: the image has CPU torch (default: {DEFAULT_INSTANCE})",
    )
    parser.add_argument(
        "--instance-count",
        type=_bounded(1, MAX_INSTANCES),
        default=1,
        help="instances training together, one torchrun node each (default: 1)",
    )
    parser.add_argument(
        "--volume-gb", type=_bounded(1, 16384), default=50, help="disk for the data (default: 50)"
    )
    parser.add_argument(
        "--max-runtime",
        type=_bounded(60, _MAX_RUNTIME),
        default=5 * 3600,
        help="seconds of training before SageMaker stops the job (default: 18000)",
    )
    parser.add_argument("--project", default="dishlens", help="the stack's ProjectName")
    parser.add_argument("--job-name", help="default: PROJECT-retrain-YYYYmmdd-HHMMSS (UTC)")
    parser.add_argument(
        "--poll-seconds", type=float, default=60.0, help="between status checks (default: 60)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the CreateTrainingJob request and stop"
    )
    return parser


def job_from_args(args: argparse.Namespace) -> RetrainingJob:
    """The job the arguments describe.

    Raises:
        ValueError: the job name is not one SageMaker and the IAM policy accept.
    """
    name = args.job_name or job_name(args.project)
    if not _JOB_NAME.fullmatch(name) or not name.startswith(args.project + "-"):
        raise ValueError(
            f"{name!r} is not a job name this stack may start: letters, digits and '-', at most "
            f"63, beginning with {args.project}-"
        )
    return RetrainingJob(
        name=name,
        image=args.image,
        role_arn=args.role_arn,
        data=args.data,
        output=args.output,
        feedback=args.feedback,
        feedback_weight=args.feedback_weight,
        model_name=args.model_name,
        base_model=args.base_model,
        epochs=args.epochs,
        train_args=tuple(shlex.split(args.train_args)),
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        volume_gb=args.volume_gb,
        max_runtime=args.max_runtime,
    )


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        job = job_from_args(args)
        if not job.image.endswith(TRAINING_TAG_SUFFIX):
            print(
                f"warning: {job.image} is not a training variant (…{TRAINING_TAG_SUFFIX}): the "
                "app image runs as UID 10001 and most likely cannot write SageMaker's "
                "/opt/ml/model, which is owned by root",
                file=sys.stderr,
            )
        if args.dry_run:
            print(json.dumps(training_request(job), indent=2))
        else:
            retrain(job, args.out, poll_seconds=args.poll_seconds)
            print(f"model: {os.fspath(args.out)}")
    except DishLensError as error:  # before ValueError: some DishLens errors are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a job name this stack may not start
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
