"""The image's writable directories, tried the way Fargate mounts them, without a container.

On Fargate the task volume on ``/tmp`` is a bind mount owned by root with mode 0755: UID 10001
cannot create anything at its top. Because the image declares ``VOLUME /tmp``, Fargate first
copies into the volume what the image holds there: the directories the Dockerfile's
``install -d`` makes for UID 10001. These tests build that mount in a temporary directory
(root-owned, 0755, the Dockerfile's directories copied in with their owner and mode), then run
DishLens's own code as UID/GID 10001 with the Dockerfile's environment pointed at it: the S3
model path downloads into ``MODEL_CACHE_DIR`` (from the moto server) and loads the model, and
Python's temporary files land in ``TMPDIR``. A second run without the copied directories (an
image without the VOLUME) shows the trap the design avoids.

What is simulated: the mount and the copy (no container engine runs here), and the child keeps
one Linux capability, CAP_DAC_READ_SEARCH, so that it can still read the Python installation
under root's 0700 home on this machine. Reads are therefore not checked as UID 10001's would
be; every write is (no CAP_DAC_OVERRIDE, no CAP_FOWNER).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.infra.common import ROOT, env, image, stage, user

BUCKET = "dltest-image-models"
MODEL_PREFIX = "models/food101-lite0/v1/"

# Runs as root, drops to the image's user keeping only CAP_DAC_READ_SEARCH, then does what the
# app and the API do with the writable paths.
CHILD = r"""
import ctypes, json, os, sys, tempfile

class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]

uid, gid = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(8, 1, 0, 0, 0) == 0  # PR_SET_KEEPCAPS
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
data = (Data * 2)()
data[0].effective = data[0].permitted = 1 << 2  # CAP_DAC_READ_SEARCH only
if libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:
    sys.exit(f"capset failed: errno {ctypes.get_errno()}")

result = {"uid": os.getuid()}
try:
    handle, scratch = tempfile.mkstemp()
    os.close(handle)
    result["temporary_file"] = scratch
    from classifier import load_classifier
    classifier = load_classifier(os.environ["MODEL_URI"])
    result["dishes"] = len(classifier.labels)
    home = os.path.join(os.environ["HOME"], ".config-probe")
    with open(home, "w") as probe:
        probe.write("ok")
    result["home_file"] = home
except Exception as error:  # reported to the test, which names what failed
    result["error"] = f"{type(error).__name__}: {error}"
print(json.dumps(result))
"""


def image_directories() -> tuple[str, list[tuple[str, int, int, int]]]:
    """The app image's VOLUME and ``(path, uid, gid, mode)`` of each directory its
    ``install -d`` makes."""
    final = image()
    (volume,) = [json.loads(rest) for word, rest in final if word == "VOLUME"]
    made = []
    for word, rest in final:
        if word == "RUN" and rest.startswith("install -d"):
            command = shlex.split(rest.split("&&")[0])
            owner = int(command[command.index("-o") + 1])
            group = int(command[command.index("-g") + 1])
            mode = int(command[command.index("-m") + 1], 8)
            made += [(path, owner, group, mode) for path in command if path.startswith("/")]
    return volume[0], made


def image_user() -> tuple[int, int]:
    uid, gid = user().split(":")
    return int(uid), int(gid)


@pytest.fixture
def fargate_mount() -> Iterator[Path]:
    """An empty directory as Fargate mounts a task volume: owned by root, mode 0755."""
    if os.geteuid() != 0:
        pytest.skip("simulating another user's writes needs root (setuid)")
    mount = Path(tempfile.mkdtemp(prefix="dltest-fargate-tmp-", dir="/tmp"))
    os.chown(mount, 0, 0)
    mount.chmod(0o755)
    yield mount
    shutil.rmtree(mount)


def copy_image_volume(mount: Path) -> None:
    """What Fargate does for an image that declares the VOLUME: copy its directories in."""
    volume, made = image_directories()
    for path, owner, group, mode in made:
        target = mount / Path(path).relative_to(volume)
        target.mkdir(parents=True)
        os.chown(target, owner, group)
        target.chmod(mode)


@pytest.fixture(scope="module")
def model_in_s3(moto_server: str) -> str:
    """The bundled model published to the moto server's S3, as publish_model.py lays it out."""
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=BUCKET)
    for path in sorted((ROOT / "models" / "food101-lite0").iterdir()):
        s3.upload_file(str(path), BUCKET, MODEL_PREFIX + path.name)
    return f"s3://{BUCKET}/{MODEL_PREFIX}"


def run_as_image_user(mount: Path, model_uri: str, moto_server: str) -> dict:
    volume, _ = image_directories()
    environment = {
        name: re.sub(rf"^{re.escape(volume)}(?=/|$)", str(mount), value)
        for name, value in env().items()
        if name not in {"PATH", "LD_PRELOAD"}
    }
    environment |= {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "MODEL_URI": model_uri,
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "HF_HUB_OFFLINE": "1",
    }
    uid, gid = image_user()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(uid), str(gid)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_image_user_downloads_and_loads_an_s3_model_under_a_fargate_mount(
    fargate_mount, model_in_s3, moto_server
):
    copy_image_volume(fargate_mount)
    result = run_as_image_user(fargate_mount, model_in_s3, moto_server)

    assert "error" not in result, result["error"]
    assert result["uid"] == image_user()[0]
    values = env()
    assert Path(result["temporary_file"]).parent == fargate_mount / "scratch"
    assert values["TMPDIR"] == "/tmp/scratch"
    cached = fargate_mount / Path(values["MODEL_CACHE_DIR"]).name / BUCKET / MODEL_PREFIX
    assert (cached / "model.safetensors").stat().st_uid == image_user()[0]
    labels = json.loads((ROOT / "models" / "food101-lite0" / "labels.json").read_text())
    assert result["dishes"] == len(labels)
    assert Path(result["home_file"]).parent == fargate_mount / "home"
    # The volume's top stays as Fargate made it: nothing needed to write there.
    assert (fargate_mount.stat().st_uid, fargate_mount.stat().st_mode & 0o777) == (0, 0o755)


def test_without_the_images_directories_the_same_run_cannot_write(
    fargate_mount, model_in_s3, moto_server
):
    # An image without VOLUME /tmp: Fargate mounts the bare volume and copies nothing in.
    result = run_as_image_user(fargate_mount, model_in_s3, moto_server)
    assert result["error"].startswith("PermissionError"), result
    assert "models" in result["error"]  # the model cache: MODEL_CACHE_DIR cannot be made


def test_every_writable_setting_points_into_a_directory_the_image_makes():
    volume, made = image_directories()
    assert volume == "/tmp"
    uid, gid = image_user()
    owned = {path for path, owner, group, _ in made if (owner, group) == (uid, gid)}
    values = env()
    for name in ("HOME", "TMPDIR", "MODEL_CACHE_DIR", "MPLCONFIGDIR", "HF_HOME", "FEEDBACK_URI"):
        assert values[name] in owned, name
    # The directories exist before the VOLUME line: later build steps could not change them.
    runtime = stage("runtime")
    words = [word for word, _ in runtime]
    install = next(i for i, (w, r) in enumerate(runtime) if r.startswith("install -d"))
    assert install < words.index("VOLUME") < words.index("USER")
