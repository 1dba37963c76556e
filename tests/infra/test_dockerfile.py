"""The Dockerfile and .dockerignore, read as text (no container engine runs here)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.infra.common import DOCKERFILE, ROOT, default_target, env, image, stage, stages, user

DOCKERIGNORE = ROOT / ".dockerignore"
NOT_SHIPPED = {"tests", "benchmarks", "scripts", "infra", "runs", "data", "feedback"}


def ignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context: the last matching pattern
    wins, and a pattern that matches a parent folder matches everything in it."""
    result = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        regex = _glob(pattern.lstrip("!").strip("/"))
        parts = path.split("/")
        if any(regex.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            result = not negated
    return result


def _glob(pattern: str) -> re.Pattern[str]:
    out = ""
    for token in re.split(r"(\*\*/|\*|\?|\[[^\]]*\])", pattern):
        if token == "**/":
            out += "(?:.*/)?"
        elif token == "*":
            out += "[^/]*"
        elif token == "?":
            out += "[^/]"
        elif token.startswith("["):
            out += token
        else:
            out += re.escape(token)
    return re.compile(out)


def test_multi_stage_build_on_python_slim_pinned_by_digest():
    froms = [stage[0][1] for stage in stages()]
    # The image named in FROM itself (not through an ARG), where Dependabot finds and bumps it.
    pins = [re.fullmatch(r"python:3\.11-slim@sha256:([0-9a-f]{64}) AS (\w+)", f) for f in froms]
    pinned = [pin for pin in pins if pin]
    assert [p[2] for p in pinned] == ["builder", "runtime"]
    assert len({p[1] for p in pinned}) == 1  # both on the same base
    # The other stages are the runtime image itself: no second base image to keep pinned.
    assert [f for f, pin in zip(froms, pins, strict=True) if not pin] == [
        "runtime AS training",
        "runtime AS app",
    ]
    copies = [rest for word, rest in stage("runtime") if word == "COPY"]
    assert copies and all(c.startswith("--from=builder ") for c in copies)


def test_torch_comes_from_the_cpu_wheel_index_at_the_pinned_versions():
    runs = " ".join(rest for word, rest in stages()[0] if word == "RUN")
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs
    assert "grep -E '^(torch|torchvision)=='" in runs
    assert "grep -vE '^(torch|torchvision)=='" in runs  # the rest from the ordinary index
    pins = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==\S+$", pins, re.M) and re.search(r"^torchvision==\S+$", pins, re.M)


def test_runs_as_an_unprivileged_user():
    # A plain `docker build .` (CI, the deploy's app image) builds the last stage: the runtime
    # image unchanged.
    assert default_target() == "app"
    assert stage("app") == [("FROM", "runtime AS app")]
    assert user("runtime") == "10001:10001"
    assert user() == "10001:10001"


def test_the_training_variant_is_the_runtime_image_as_root_and_nothing_else():
    assert stage("training") == [("FROM", "runtime AS training"), ("USER", "0:0")]
    assert user("training").split(":")[0] in {"root", "0"}
    assert env("training") == env()  # the same settings, model (MODEL_URI) and venv
    assert image("training")[:-2] == image()[:-1]  # the runtime's instructions, then root
    text = DOCKERFILE.read_text()
    # The one exception hadolint is told about sits on the training stage's USER.
    assert text.count("hadolint ignore=DL3002") == 1
    assert "# hadolint ignore=DL3002\nUSER 0:0\n" in text
    assert text.index("FROM runtime AS training") < text.index("hadolint ignore=DL3002")


def test_hadolint_finds_nothing():
    if shutil.which("hadolint") is None:
        pytest.skip("hadolint is not installed here (scripts/lint.sh runs it in CI)")
    result = subprocess.run(
        ["hadolint", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_serves_streamlit_on_8501_headless_with_a_health_check():
    final = dict(image())
    assert final["EXPOSE"] == "8501"
    command = json.loads(final["CMD"])  # exec form: no shell between Docker and Streamlit
    # The launcher loads the model, then starts Streamlit on app.py in the same process.
    assert command[:2] == ["python", "launch_app.py"]
    assert "--server.address=0.0.0.0" in command and "--server.headless=true" in command
    assert "--server.port=8501" in command
    health = final["HEALTHCHECK"]
    assert "python" in health and "curl" not in health and "HEALTHCHECK_URL" in health
    assert env()["HEALTHCHECK_URL"] == "http://127.0.0.1:8501/_stcore/health"


def test_everything_written_at_run_time_goes_under_tmp():
    values = env()
    for name in ("HOME", "TMPDIR", "MODEL_CACHE_DIR", "MPLCONFIGDIR", "HF_HOME", "FEEDBACK_URI"):
        assert values[name].startswith("/tmp/"), name
    assert values["PYTHONDONTWRITEBYTECODE"] == "1"
    assert values["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"


def test_the_runtime_preloads_tcmalloc_from_the_package_it_installs():
    final = stage("runtime")
    preload = env()["LD_PRELOAD"]
    # A bare file name: the loader finds it on the library path whatever the architecture.
    assert preload == "libtcmalloc_minimal.so.4"
    installs = [
        number
        for number, (word, rest) in enumerate(final)
        if word == "RUN" and "apt-get install" in rest
    ]
    assert len(installs) == 1
    install = final[installs[0]][1]
    assert "libtcmalloc-minimal4" in install and "--no-install-recommends" in install
    assert "rm -rf /var/lib/apt/lists" in install
    user = next(number for number, (word, _) in enumerate(final) if word == "USER")
    assert installs[0] < user  # installed as root, before the image drops to its user


CLASSIFY_UNDER_PRELOAD = """
import sys
from PIL import Image
from tests.support.servers import allocator
from classifier import load_classifier
if allocator() != "tcmalloc":
    sys.exit(3)
photo = Image.new("RGB", (320, 240), (200, 120, 40))
print(load_classifier(None).predict(photo).best.label)
"""


def test_the_classifier_runs_with_the_allocator_the_image_preloads():
    preload = env()["LD_PRELOAD"]
    result = subprocess.run(
        [sys.executable, "-c", CLASSIFY_UNDER_PRELOAD],
        cwd=ROOT,
        env=dict(os.environ, LD_PRELOAD=preload),
        capture_output=True,
        text=True,
        timeout=240,
    )
    if result.returncode == 3:
        pytest.skip(f"{preload} is not installed here (Debian: libtcmalloc-minimal4)")
    assert result.returncode == 0, result.stderr

    from PIL import Image

    from classifier import load_classifier

    photo = Image.new("RGB", (320, 240), (200, 120, 40))
    assert result.stdout.strip() == load_classifier(None).predict(photo).best.label


def test_the_default_model_is_the_one_the_classifier_bundles():
    from classifier.predictor import DEFAULT_MODEL_DIR

    (default,) = re.findall(r"^ARG MODEL_DIR=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert ROOT / default == DEFAULT_MODEL_DIR
    assert (ROOT / default / "card.json").is_file()
    assert env()["MODEL_URI"] == "/app/model"
    assert ("COPY", "${MODEL_DIR}/ model/") in stages()[0]


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".env",
        "api/.env",
        ".streamlit/secrets.toml",
        "tests/conftest.py",
        "runs/food10/checkpoint.pt",
        "benchmarks/loadgen.py",
        "infra/dishlens.yaml",
        "scripts/fetch_model.py",
        "data/food-mnist/x.jpg",
        "classifier/__pycache__/model.cpython-311.pyc",
        "feedback/2026-11-23.jsonl",
        ".github/workflows/deploy.yml",
    ],
)
def test_secrets_tests_git_and_data_never_enter_the_build_context(path):
    assert ignored(path)


def test_what_the_dockerfile_copies_is_in_the_build_context():
    sources = []
    for word, rest in stages()[0]:
        if word == "COPY":
            sources += [s for s in rest.split()[:-1] if not s.startswith("--")]
    sources = [s.replace("${MODEL_DIR}", "models/food101-lite0") for s in sources]
    sources += ["model/card.json", "README.md"]
    for source in sources:
        if "[" not in source:
            assert not ignored(source.rstrip("/") + ("/x.py" if source.endswith("/") else "")), (
                source
            )


def test_every_top_level_package_is_shipped():
    copied = {rest.split()[0].rstrip("/") for word, rest in stages()[0] if word == "COPY"}
    packages = {
        path.parent.name
        for path in ROOT.glob("*/*.py")
        if path.parent.name not in NOT_SHIPPED and not path.parent.name.startswith(".")
    }
    assert packages <= copied, f"add {sorted(packages - copied)} to the Dockerfile (or NOT_SHIPPED)"
    for package in packages:
        assert not ignored(f"{package}/module.py")


def test_dockerignore_is_an_allow_list():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not allowed & (NOT_SHIPPED | {".git", ".github", ".streamlit/secrets.toml"})
    assert ".streamlit/config.toml" in allowed


def top_level_imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_image_holds_every_top_level_module_the_page_imports():
    """app.py's and the launcher's imports of the repo's top-level modules are copied in."""
    copied = " ".join(rest for word, rest in stages()[0] if word == "COPY")
    allowed = (ROOT / ".dockerignore").read_text().splitlines()
    for entry in ("app.py", "launch_app.py"):
        imported = top_level_imports((ROOT / entry).read_text())
        local = {name for name in imported if (ROOT / f"{name}.py").is_file()}
        assert "app_support" in local or entry == "launch_app.py"
        for name in local | {entry.removesuffix(".py")}:
            assert f"{name}.py" in copied, name
            assert f"!{name}.py" in allowed, name
