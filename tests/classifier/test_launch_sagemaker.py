"""classifier.launch_sagemaker: the command each instance of a SageMaker job runs, the refused
cluster descriptions, and real runs of the launcher on test_distributed's tiny generated set:
one "instance", and two on loopback that must train the model one instance trains."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from classifier import launch_sagemaker
from classifier.errors import ClusterConfigError
from classifier.launch_sagemaker import Cluster, cluster_from_config, command
from dishlens.errors import DishLensError
from tests.classifier.test_distributed import (
    assert_same_training,
    card,
    cli_args,
    epoch_losses,
    striped_dataset,
)
from tests.support.servers import REPO_ROOT

TRAIN_ARGS = ["--data", "/opt/ml/input/data/train", "--out", "/opt/ml/model", "--epochs", "5"]


def sagemaker_config(current: str, hosts: list[str]) -> dict:
    """resourceconfig.json as SageMaker writes it (the fields the launcher reads)."""
    return {"current_host": current, "hosts": hosts, "network_interface_name": "eth0"}


def test_one_host_runs_the_training_cli_itself() -> None:
    cluster = cluster_from_config(sagemaker_config("algo-1", ["algo-1"]))
    assert command(cluster, TRAIN_ARGS, 1, python="python3") == [
        *("python3", "-m", "classifier.train"),
        *TRAIN_ARGS,
    ]


@pytest.mark.parametrize("count", [2, 3])
def test_every_host_joins_one_torchrun_with_its_own_node_rank(count: int) -> None:
    hosts = [f"algo-{i}" for i in range(count, 0, -1)]  # listed in any order
    commands = [
        command(cluster_from_config(sagemaker_config(host, hosts)), TRAIN_ARGS, 4, "python3")
        for host in sorted(hosts)
    ]
    for node_rank, run in enumerate(commands):
        assert run == [
            *("python3", "-m", "torch.distributed.run"),
            *("--nnodes", str(count), "--node_rank", str(node_rank), "--nproc_per_node", "4"),
            *("--master_addr", "algo-1", "--master_port", str(launch_sagemaker.MASTER_PORT)),
            *("-m", "classifier.train", *TRAIN_ARGS),
        ]


def test_node_0_is_the_first_host_with_numbers_compared_as_numbers() -> None:
    # Node 0 runs rank 0, which alone writes the model: it must be algo-1, not algo-10.
    hosts = [f"algo-{i}" for i in range(1, 12)]
    cluster = cluster_from_config(sagemaker_config("algo-2", list(reversed(hosts))))
    assert cluster.hosts == tuple(hosts)
    assert (cluster.master, cluster.node_rank) == ("algo-1", 1)
    assert cluster_from_config(sagemaker_config("algo-10", hosts)).node_rank == 9


def test_gloo_and_nccl_use_sagemaker_s_interface_unless_told_otherwise() -> None:
    cluster = Cluster("algo-1", ("algo-1", "algo-2"), "eth0")
    env = launch_sagemaker.environment(cluster, {"NCCL_SOCKET_IFNAME": "ens5", "PATH": "/bin"})
    assert env == {"NCCL_SOCKET_IFNAME": "ens5", "GLOO_SOCKET_IFNAME": "eth0", "PATH": "/bin"}
    assert launch_sagemaker.environment(Cluster("a", ("a",)), {}) == {}


def test_one_process_per_cpu_machine() -> None:
    import torch

    expected = torch.cuda.device_count() if torch.cuda.is_available() else 1
    assert launch_sagemaker.processes_per_node() == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"hosts": ["algo-1"]}, "names no current_host"),
        ({"current_host": "algo-1", "hosts": "algo-1"}, "hosts is not a list of names"),
        ({"current_host": "algo-1", "hosts": []}, "hosts is not a list of names"),
        ({"current_host": "algo-1", "hosts": ["algo-1", "algo-1"]}, "lists a host twice"),
        (
            {"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]},
            r"This machine \(algo-3\) is not among the cluster's hosts \(algo-1, algo-2\)",
        ),
    ],
    ids=["no-current", "hosts-not-list", "no-hosts", "twice", "not-among"],
)
def test_a_cluster_description_that_does_not_fit_is_refused(config: dict, message: str) -> None:
    with pytest.raises(ClusterConfigError, match=message) as refused:
        cluster_from_config(config)
    assert isinstance(refused.value, DishLensError) and isinstance(refused.value, ValueError)


def launcher_argv(config: Path, *train_args: str, port: int | None = None) -> list[str]:
    argv = [sys.executable, "-m", "classifier.launch_sagemaker", "--resource-config", str(config)]
    if port is not None:
        argv += ["--master-port", str(port)]
    return [*argv, "--", *train_args]


def launcher(config: Path, *train_args: str) -> subprocess.CompletedProcess[str]:
    argv = launcher_argv(config, *train_args)
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def write_config(path: Path, current: str, hosts: list[str], interface: str = "eth0") -> Path:
    path.write_text(
        json.dumps(sagemaker_config(current, hosts) | {"network_interface_name": interface})
    )
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist: run this launcher inside a SageMaker training job"),
        ("{not json", "is not a readable JSON cluster description"),
        ("[]", "is not a JSON object describing the cluster"),
        (json.dumps(sagemaker_config("algo-2", ["algo-1"])), "(algo-2) is not among"),
    ],
    ids=["missing", "not-json", "not-object", "not-among"],
)
def test_the_launcher_exits_2_with_one_line(tmp_path: Path, content, message: str) -> None:
    config = tmp_path / "resourceconfig.json"
    if content is not None:
        config.write_text(content)
    done = launcher(config, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("classifier.launch_sagemaker: ")
    assert message in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def striped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return striped_dataset(tmp_path_factory.mktemp("striped") / "data")


@pytest.fixture(scope="module")
def one_instance(striped: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The launcher on a one-host job: the model folder and what it printed."""
    root = tmp_path_factory.mktemp("one-instance")
    config = write_config(root / "resourceconfig.json", "algo-1", ["algo-1"])
    done = launcher(config, *cli_args(striped, root / "model"))
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "model", done.stdout


def test_a_one_instance_job_trains_and_writes_the_model(one_instance) -> None:
    out, printed = one_instance
    assert "algo-1 is node 0 of 1: -m classifier.train --data" in printed
    assert (out / "card.json").is_file() and (out / "labels.json").is_file()
    assert set(epoch_losses(printed)) == {1, 2} and "distributed" not in card(out)["training"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_instances_on_loopback_train_the_model_one_instance_trains(
    striped: Path, one_instance, tmp_path: Path
) -> None:
    # Two names for this machine stand for algo-1 and algo-2: "127.0.0.1" sorts first, so it
    # is node 0 and the rendezvous address; gloo is told to use the loopback interface.
    hosts, port = ["localhost", "127.0.0.1"], free_port()
    runs = {}
    for host in hosts:
        config = write_config(tmp_path / f"{host}.json", host, hosts, interface="lo")
        argv = launcher_argv(config, *cli_args(striped, tmp_path / host), port=port)
        runs[host] = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    printed = {host: run.communicate(timeout=300) for host, run in runs.items()}
    for host, run in runs.items():
        assert run.returncode == 0, printed[host][1][-3000:]
    first, second = tmp_path / "127.0.0.1", tmp_path / "localhost"
    assert (
        "is node 0 of 2" in printed["127.0.0.1"][0] and "is node 1 of 2" in printed["localhost"][0]
    )

    reference, reference_output = one_instance
    assert_same_training(first, reference)
    losses, expected = epoch_losses(printed["127.0.0.1"][0]), epoch_losses(reference_output)
    assert all(losses[e] == pytest.approx(expected[e], abs=1.5e-3) for e in expected)
    assert card(first)["training"]["distributed"]["processes"] == 2
    assert card(first)["training"]["distributed"]["processes_per_machine"] == 1
    # Only rank 0 writes: the second instance's model folder stays empty, so SageMaker's
    # archive of every instance's /opt/ml/model holds the first instance's model alone.
    assert not any(second.iterdir())
