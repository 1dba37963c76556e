"""Start ``classifier.train`` on every instance of a SageMaker training job.

    python3 -m classifier.launch_sagemaker -- --data /opt/ml/input/data/train \\
        --out /opt/ml/model ...

``scripts/start_retraining.py`` makes this the container's entrypoint when a job has several
instances. SageMaker starts the same container on each and describes the cluster in
``/opt/ml/input/config/resourceconfig.json`` (``current_host``, ``hosts``,
``network_interface_name``); this module turns that into one ``torchrun`` per instance and
replaces itself with it (``exec``), so SageMaker sees torchrun's exit status.

Decisions:

- **Node ranks from one order every instance computes.** The hosts are sorted by name with
  numbers compared as numbers (``algo-2`` before ``algo-10``); an instance's node rank is its
  place in that order and the rendezvous address is the first host. Node 0 runs global rank 0,
  the only process that evaluates and writes the artifact, so the model is written on the
  first host (``algo-1``) and the other instances leave their ``/opt/ml/model`` empty.
  SageMaker's documentation says it gathers ``/opt/ml/model`` of every container into the one
  ``model.tar.gz`` and that containers must not write clashing names: with one writer, the
  archive holds exactly rank 0's files.
- **A fixed port** (:data:`MASTER_PORT`, torchrun's default): nothing else listens in the
  container, and every instance must name the same one (``--master-port`` changes it, for
  several "instances" on one test machine).
- **One process per GPU, else one per machine.** Without CUDA (the image carries CPU torch) an
  instance runs one process: gloo exchanges gradients between machines, and one process's
  torch threads already use all of the machine's cores; several processes per CPU machine
  would share the cores and only add communication.
- **The network interface SageMaker names** is given to gloo and NCCL
  (``GLOO_SOCKET_IFNAME``/``NCCL_SOCKET_IFNAME``, unless already set), so they do not pick
  another interface of the container.
- **One host runs ``classifier.train`` itself**, without torchrun: a one-instance job behaves
  exactly as before the launcher existed.

Exit status: that of ``classifier.train`` (or torchrun); 2 when the cluster description is
missing or does not fit this machine (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.errors import ClusterConfigError

RESOURCE_CONFIG = Path("/opt/ml/input/config/resourceconfig.json")
MASTER_PORT = 29500
PROGRAM = "classifier.launch_sagemaker"
TRAIN = ["-m", "classifier.train"]


@dataclass(frozen=True)
class Cluster:
    """This machine's place in a training cluster: ``hosts`` in node-rank order."""

    current_host: str
    hosts: tuple[str, ...]
    network_interface: str | None = None

    @property
    def node_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def master(self) -> str:
        return self.hosts[0]


def _host_order(host: str) -> list[tuple[int, int, str]]:
    """Sort key: ``algo-2`` before ``algo-10`` (digit runs compared as numbers)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", host)]


def cluster_from_config(config: Mapping[str, Any]) -> Cluster:
    """The cluster a parsed ``resourceconfig.json`` describes.

    Raises:
        ClusterConfigError: ``current_host`` or ``hosts`` is missing or not names, a host is
            listed twice, or ``current_host`` is not among the hosts.
    """
    current, hosts = config.get("current_host"), config.get("hosts")
    if not isinstance(current, str) or not current:
        raise ClusterConfigError("The cluster description names no current_host.")
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise ClusterConfigError("The cluster description's hosts is not a list of names.")
    if len(set(hosts)) != len(hosts):
        raise ClusterConfigError("The cluster description lists a host twice.")
    if current not in hosts:
        raise ClusterConfigError(
            f"This machine ({current}) is not among the cluster's hosts ({', '.join(hosts)})."
        )
    interface = config.get("network_interface_name")
    return Cluster(
        current,
        tuple(sorted(hosts, key=_host_order)),
        interface if isinstance(interface, str) and interface else None,
    )


def read_cluster(path: Path = RESOURCE_CONFIG) -> Cluster:
    """The cluster described in ``path``.

    Raises:
        ClusterConfigError: the file is missing, not JSON, or does not describe this machine.
    """
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClusterConfigError(
            f"{path} does not exist: run this launcher inside a SageMaker training job, or "
            "run python3 -m classifier.train (or torchrun) yourself."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ClusterConfigError(f"{path} is not a readable JSON cluster description.") from None
    if not isinstance(config, dict):
        raise ClusterConfigError(f"{path} is not a JSON object describing the cluster.")
    return cluster_from_config(config)


def processes_per_node() -> int:
    """One process per GPU when CUDA is available, else one per machine."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def command(
    cluster: Cluster,
    train_args: Sequence[str],
    processes: int,
    python: str = sys.executable,
    port: int = MASTER_PORT,
) -> list[str]:
    """The command this machine runs: ``classifier.train`` itself on one host, torchrun with
    this machine's node rank on several."""
    if len(cluster.hosts) == 1:
        return [python, *TRAIN, *train_args]
    return [
        python,
        *("-m", "torch.distributed.run"),
        *("--nnodes", str(len(cluster.hosts)), "--node_rank", str(cluster.node_rank)),
        *("--nproc_per_node", str(processes)),
        *("--master_addr", cluster.master, "--master_port", str(port)),
        *TRAIN,
        *train_args,
    ]


def environment(cluster: Cluster, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with gloo and NCCL told which interface to use (what is set stays)."""
    env = dict(environ)
    if cluster.network_interface:
        for name in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
            env.setdefault(name, cluster.network_interface)
    return env


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Run classifier.train on every instance of a SageMaker training job.",
        usage=f"python3 -m {PROGRAM} [options] -- CLASSIFIER_TRAIN_ARGS...",
    )
    where = f"SageMaker's cluster description (default: {RESOURCE_CONFIG})"
    parser.add_argument("--resource-config", type=Path, default=RESOURCE_CONFIG, help=where)
    port = f"rendezvous port on the first host (default: {MASTER_PORT})"
    parser.add_argument("--master-port", type=int, default=MASTER_PORT, help=port)
    return parser


def split_argv(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """``[OPTIONS] -- TRAIN_ARGS...`` -> (the launcher's options, classifier.train's arguments).
    Without ``--`` every argument is classifier.train's (``-h`` alone: the launcher's help)."""
    args = list(argv)
    if args in (["-h"], ["--help"]):
        get_args_parser().parse_args(args)
    if "--" not in args:
        return get_args_parser().parse_args([]), args
    cut = args.index("--")
    return get_args_parser().parse_args(args[:cut]), args[cut + 1 :]


def main(argv: Sequence[str]) -> None:
    options, train_args = split_argv(argv)
    try:
        cluster = read_cluster(options.resource_config)
    except ClusterConfigError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    processes = processes_per_node() if len(cluster.hosts) > 1 else 1
    run = command(cluster, train_args, processes, port=options.master_port)
    print(
        f"{PROGRAM}: {cluster.current_host} is node {cluster.node_rank} of "
        f"{len(cluster.hosts)}: {' '.join(run[1:])}",
        flush=True,
    )
    os.execve(run[0], run, environment(cluster, os.environ))


if __name__ == "__main__":
    main(sys.argv[1:])
