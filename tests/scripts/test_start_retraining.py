"""scripts/start_retraining.py against SageMaker and S3 on a loopback moto server: the request
SageMaker records, the wait, the model fetched from the job's output, and the typed errors.

moto 5.2 records a training job as ``Completed`` the moment it is created and runs nothing; the
model SageMaker would upload is put at the job's ``ModelArtifacts`` path by the test, and the
failed, stopped and still-running states are set on moto's own record of the job (in this
process: the server runs on a thread)."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from classifier import launch_sagemaker, train
from classifier.errors import ModelDownloadError, TrainingJobError
from tests.scripts.conftest import load_script

retraining = load_script("start_retraining")

ROLE = "arn:aws:iam::123456789012:role/dishlens-TrainingRole-ABC"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/dishlens:0123abcd-4567ef-training"
NAME = "dishlens-retrain-20261205-001500"


def a_job(bucket: str, **changes) -> retraining.RetrainingJob:
    fields = {
        "name": NAME,
        "image": IMAGE,
        "role_arn": ROLE,
        "data": f"s3://{bucket}/datasets/food10/",
        "output": f"s3://{bucket}/training/",
        "feedback": f"s3://{bucket}/feedback/",
        "feedback_weight": 3.0,
        "model_name": "food10-lite0",
    }
    return retraining.RetrainingJob(**(fields | changes))


def describe(name: str = NAME) -> dict:
    return boto3.client("sagemaker").describe_training_job(TrainingJobName=name)


def moto_job(name: str = NAME):
    """moto's record of a training job (the server shares this process's backends)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].training_jobs[name]


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def model_tarball(model_dir: Path) -> bytes:
    """What SageMaker uploads: /opt/ml/model's files at the archive's root."""
    return tarball({p.name: p.read_bytes() for p in sorted(model_dir.iterdir())})


def put_output(bucket: str, body: bytes, name: str = NAME) -> str:
    key = f"training/{name}/output/model.tar.gz"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def put_feedback(bucket: str) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key="feedback/2026/a.json", Body=b"{}")


def test_sagemaker_records_the_job_the_training_cli_can_run(bucket) -> None:
    retraining.start(a_job(bucket))
    job = describe()
    spec = job["AlgorithmSpecification"]
    assert spec["TrainingImage"] == IMAGE
    assert spec["TrainingInputMode"] == "File"
    assert spec["ContainerEntrypoint"] == ["python3", "-m", "classifier.train"]
    assert job["RoleArn"] == ROLE
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert {n: c["DataSource"]["S3DataSource"]["S3Uri"] for n, c in channels.items()} == {
        "train": f"s3://{bucket}/datasets/food10/",
        "feedback": f"s3://{bucket}/feedback/",
    }
    for channel in channels.values():
        source = channel["DataSource"]["S3DataSource"]
        assert (source["S3DataType"], source["S3DataDistributionType"]) == (
            "S3Prefix",
            "FullyReplicated",
        )
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{bucket}/training/"
    assert job["ResourceConfig"] == {
        "InstanceType": "ml.c6i.8xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 50,
    }
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 5 * 3600}
    assert job["EnableNetworkIsolation"] is True

    # The arguments are ones classifier.train accepts, pointing at the channels' folders.
    args = train.get_args_parser().parse_args(spec["ContainerArguments"])
    assert (args.data, args.out) == ("/opt/ml/input/data/train", "/opt/ml/model")
    assert args.extra_data == ["/opt/ml/input/data/feedback:3"]
    assert (args.init_from, args.name, args.epochs) == ("/app/model", "food10-lite0", 5)
    assert args.fix_res and args.frozen_blocks == 12


def test_several_instances_start_the_launcher_with_the_same_training_arguments(bucket) -> None:
    retraining.start(a_job(bucket, instance_count=2))
    job = describe()
    spec = job["AlgorithmSpecification"]
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert spec["ContainerEntrypoint"] == ["python3", "-m", "classifier.launch_sagemaker", "--"]
    assert job["EnableNetworkIsolation"] is True  # the peers still reach each other
    # What the launcher hands classifier.train: the one-instance job's arguments.
    one = retraining.training_request(a_job(bucket))["AlgorithmSpecification"]
    _, train_args = launch_sagemaker.split_argv(
        spec["ContainerEntrypoint"][3:] + spec["ContainerArguments"]
    )
    assert train_args == one["ContainerArguments"]


def test_a_completed_job_s_model_is_fetched_into_the_folder(bucket, small_model, tmp_path) -> None:
    put_feedback(bucket)
    put_output(bucket, model_tarball(small_model))
    out = retraining.retrain(a_job(bucket), tmp_path / "retrained", poll_seconds=0)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in small_model.iterdir())
    for path in small_model.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes()
    assert describe()["ModelArtifacts"]["S3ModelArtifacts"].startswith(f"s3://{bucket}/training/")
    assert not list(tmp_path.glob(".retrained-*"))  # the staging folder is gone


def test_an_empty_feedback_prefix_is_left_out_of_the_job(bucket, small_model, tmp_path) -> None:
    put_output(bucket, model_tarball(small_model))
    retraining.retrain(a_job(bucket), tmp_path / "retrained", poll_seconds=0)
    job = describe()
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train"]
    assert "--extra-data" not in job["AlgorithmSpecification"]["ContainerArguments"]


def run(*argv: str) -> int:
    return retraining.main(retraining.get_args_parser().parse_args(list(argv)))


def cli(bucket: str, out: Path, *more: str) -> tuple[str, ...]:
    return (
        *("--out", str(out), "--image", IMAGE, "--role-arn", ROLE),
        *("--data", f"s3://{bucket}/datasets/food10", "--output", f"s3://{bucket}/training/"),
        *("--job-name", NAME, "--poll-seconds", "0", *more),
    )


def test_the_command_line_trains_and_names_the_model_folder(
    bucket, small_model, tmp_path, capsys
) -> None:
    put_output(bucket, model_tarball(small_model))
    out = tmp_path / "retrained"
    assert run(*cli(bucket, out, "--instance-type", "ml.m7i.4xlarge", "--epochs", "2")) == 0
    assert f"model: {out}" in capsys.readouterr().out
    assert (out / "card.json").read_bytes() == (small_model / "card.json").read_bytes()
    job = describe()
    assert job["ResourceConfig"]["InstanceType"] == "ml.m7i.4xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 1
    assert job["AlgorithmSpecification"]["ContainerArguments"][:2] == [
        "--data",
        "/opt/ml/input/data/train",
    ]


def test_a_dry_run_prints_the_request_and_starts_nothing(bucket, tmp_path, capsys) -> None:
    name = "dishlens-retrain-dry-run"
    assert run(*cli(bucket, tmp_path / "m", "--dry-run", "--job-name", name)) == 0
    request = json.loads(capsys.readouterr().out)
    assert request["TrainingJobName"] == name
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith(
        "/datasets/food10/"
    )
    listed = boto3.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert name not in [job["TrainingJobName"] for job in listed]


def test_the_instance_count_reaches_the_request(bucket, tmp_path, capsys) -> None:
    assert run(*cli(bucket, tmp_path / "m", "--dry-run", "--instance-count", "3")) == 0
    request = json.loads(capsys.readouterr().out)
    assert request["ResourceConfig"]["InstanceCount"] == 3
    assert (
        request["AlgorithmSpecification"]["ContainerEntrypoint"][2] == "classifier.launch_sagemaker"
    )


def test_an_image_that_is_not_the_training_variant_draws_a_warning(bucket, tmp_path, capsys):
    app_image = IMAGE.removesuffix(retraining.TRAINING_TAG_SUFFIX)
    assert run(*cli(bucket, tmp_path / "m", "--dry-run")) == 0
    assert "warning" not in capsys.readouterr().err
    assert run(*cli(bucket, tmp_path / "m", "--dry-run", "--image", app_image)) == 0
    printed = capsys.readouterr()
    # A warning, not a refusal: the request still names the image it was given.
    assert json.loads(printed.out)["AlgorithmSpecification"]["TrainingImage"] == app_image
    assert f"warning: {app_image} is not a training variant" in printed.err
    assert "/opt/ml/model" in printed.err


def test_a_failed_job_is_a_clear_error_with_sagemaker_s_reason(bucket) -> None:
    retraining.start(a_job(bucket))
    record = moto_job()
    record.training_job_status = "Failed"
    record.failure_reason = "AlgorithmError: ExecuteUserScriptError: exit code 1"
    with pytest.raises(TrainingJobError) as caught:
        retraining.wait(NAME, poll_seconds=0)
    message = str(caught.value)
    assert message.startswith(f"The training job {NAME} failed: AlgorithmError")
    assert message.endswith("No model was fetched.")
    assert caught.value.reason == record.failure_reason and caught.value.job == NAME


def test_a_stopped_job_says_it_was_stopped_and_at_which_limit(bucket) -> None:
    retraining.start(a_job(bucket, max_runtime=600))
    moto_job().training_job_status = "Stopped"
    with pytest.raises(TrainingJobError, match=r"was stopped before it finished .* 600 s"):
        retraining.wait(NAME, poll_seconds=0)


def test_waiting_polls_until_the_job_ends_and_gives_up_after_the_timeout(bucket) -> None:
    retraining.start(a_job(bucket))
    record = moto_job()
    record.training_job_status = "InProgress"
    polls = []

    def finish_on_third_poll(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:
            record.training_job_status = "Completed"

    assert retraining.wait(NAME, poll_seconds=7, sleep=finish_on_third_poll)["TrainingJobName"]
    assert polls == [7, 7]
    record.training_job_status = "InProgress"
    with pytest.raises(TrainingJobError, match="has not finished after 0 s; it is still running"):
        retraining.wait(NAME, poll_seconds=0, timeout=0)


def test_a_job_that_does_not_exist_is_a_clear_error(aws) -> None:
    with pytest.raises(TrainingJobError) as caught:
        retraining.wait("dishlens-retrain-nobody", poll_seconds=0)
    assert str(caught.value).startswith("Could not read the state of the training job")
    assert "ValidationException" not in str(caught.value)


def test_a_missing_model_tarball_fails_the_command_cleanly(bucket, tmp_path, capsys) -> None:
    assert run(*cli(bucket, tmp_path / "retrained")) == 1
    err = capsys.readouterr().err
    assert "error: Could not download s3://" in err
    for library_text in ("Traceback", "botocore", "ClientError", "404"):
        assert library_text not in err.split("error: ", 1)[1]
    assert not (tmp_path / "retrained").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (tarball({"../card.json": b"{}"}), "points outside its folder"),
        (tarball({"weights.bin": b"x"}), "has no card.json"),
        (b"<html>not a tarball</html>", "is not a readable tar.gz archive"),
    ],
    ids=["escapes", "no-card", "not-a-tarball"],
)
def test_an_archive_that_is_not_a_model_is_refused(bucket, tmp_path, body, message) -> None:
    uri = put_output(bucket, body)
    with pytest.raises(ModelDownloadError, match=message):
        retraining.download_model(uri, tmp_path / "retrained")
    assert not (tmp_path / "card.json").exists()
    assert not (tmp_path / "retrained").exists() or not any((tmp_path / "retrained").iterdir())


def test_the_model_folder_must_be_new(bucket, small_model, tmp_path) -> None:
    uri = put_output(bucket, model_tarball(small_model))
    with pytest.raises(ModelDownloadError, match="is not empty"):
        retraining.download_model(uri, small_model)


@pytest.mark.parametrize(
    "bad",
    [
        ("--instance-type", "c6i.8xlarge"),
        ("--data", "datasets/food10/"),
        ("--epochs", "0"),
        ("--feedback-weight", "-1"),
        ("--max-runtime", "10"),
        ("--instance-count", "0"),
        ("--instance-count", "17"),
    ],
    ids=lambda bad: bad[0],
)
def test_bad_options_exit_2(bad, tmp_path, capsys) -> None:
    argv = [*cli("b", tmp_path / "m"), *bad]
    with pytest.raises(SystemExit) as caught:
        retraining.get_args_parser().parse_args(argv)
    assert caught.value.code == 2
    assert bad[0] in capsys.readouterr().err


def test_job_names_start_with_the_project_the_iam_policy_allows(tmp_path, capsys) -> None:
    now = datetime(2026, 12, 5, 0, 15, tzinfo=UTC)
    assert retraining.job_name("dishlens", now) == "dishlens-retrain-20261205-001500"
    argv = [*cli("b", tmp_path / "m"), "--job-name", "other-retrain-1"]
    assert run(*argv) == 2
    assert "beginning with dishlens-" in capsys.readouterr().err
    assert run(*cli("b", tmp_path / "m"), "--job-name", "dishlens-" + "x" * 60) == 2
