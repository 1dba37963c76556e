"""Paths and small readers shared by the infrastructure tests."""

from __future__ import annotations

import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "infra").glob("*.yaml"))
TEMPLATE = ROOT / "infra" / "dishlens.yaml"
DOCKERFILE = ROOT / "Dockerfile"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


@cache
def template() -> dict[str, Any]:
    """The stack template, with !Ref, !Sub, !If... read as {"Ref": ...} and so on."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(TEMPLATE))


def resources(kind: str) -> dict[str, dict[str, Any]]:
    """``{logical id: resource}`` for every resource of one type."""
    return {name: r for name, r in template()["Resources"].items() if r["Type"] == kind}


def props(name: str) -> dict[str, Any]:
    return template()["Resources"][name]["Properties"]


def key_values(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """``[{"Key": k, "Value": v}, ...]`` (ALB and target group attributes) as a dict."""
    return {pair["Key"]: pair["Value"] for pair in pairs}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, in order."""
    split: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            split.append([])
        if split:
            split[-1].append(instruction)
    return split


def _from(stage_instructions: list[tuple[str, str]]) -> tuple[str, str]:
    """``(base, name)`` of a stage: what its FROM names and what it is called (``AS``)."""
    base, _, name = stage_instructions[0][1].partition(" AS ")
    return base.strip(), name.strip()


def stage_names() -> list[str]:
    return [_from(s)[1] for s in stages()]


def stage(name: str) -> list[tuple[str, str]]:
    """The instructions of the stage called ``name`` (its own, FROM first)."""
    (found,) = [s for s in stages() if _from(s)[1] == name]
    return found


def default_target() -> str:
    """The stage a plain ``docker build .`` builds: the last one."""
    return stage_names()[-1]


def image(target: str | None = None) -> list[tuple[str, str]]:
    """The instructions that make the image of ``target`` (default: the default target): those
    of the stages it is built ``FROM`` in this Dockerfile, then its own."""
    own = stage(target or default_target())
    base = _from(own)[0]
    return (image(base) if base in stage_names() else []) + own


def env(target: str | None = None) -> dict[str, str]:
    """The ENV values of an image (default: the default target's)."""
    values = {}
    for word, rest in image(target):
        if word == "ENV":
            values.update(pair.split("=", 1) for pair in shlex.split(rest))
    return values


def user(target: str | None = None) -> str:
    """The user an image's processes run as: its last USER (``root`` when it has none)."""
    users = [rest for word, rest in image(target) if word == "USER"]
    return users[-1] if users else "root"
