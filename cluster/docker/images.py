"""Node and Toxiproxy images: what the node image carries, its tag (a hash of that content and of a
system's extra packages and files), and building a missing one with docker/build (no registry)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from typing import Iterable

import docker.errors
from docker.client import DockerClient

from faultbed.cluster.systems import DEFAULT_TRAITS, SystemTraits
from faultbed.errors import SetupError

log = logging.getLogger(__name__)

# The repository: cluster/docker/images.py -> cluster/docker -> cluster -> the root.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE_REPOSITORY = os.environ.get("FAULTBED_IMAGE_REPOSITORY", "faultbed")
NODE_IMAGE_ENV = "FAULTBED_NODE_IMAGE"  # run another node image than the current code's (at your own risk)
# Each source folder of the node image and where it lives under the one import name.
NODE_PACKAGES = {"faultbed": "faultbed", "cluster": "faultbed/cluster", "nemesis": "faultbed/nemesis",
                 "checkers": "faultbed/checkers"}
NODE_DOCKERFILE = os.path.join("docker", "node.Dockerfile")
BUILD_SCRIPT = os.path.join(PROJECT_ROOT, "docker", "build")
BUILD_SCRIPT_TIMEOUT = 900.0


def require_image(client: DockerClient, image: str, traits: SystemTraits = DEFAULT_TRAITS) -> None:
    """The image must exist; in a source checkout, missing images are built first (docker/build).

    The node image is tagged by a hash of the code, so after an edit only its small
    code layer is rebuilt (seconds); a missing base takes about a minute.
    """
    if _image_present(client, image):
        return
    if os.access(BUILD_SCRIPT, os.X_OK) and NODE_IMAGE_ENV not in os.environ:
        log.warning("Docker image %s missing: building it with %s", image, BUILD_SCRIPT)
        try:
            subprocess.run([BUILD_SCRIPT, *build_arguments(traits)], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=BUILD_SCRIPT_TIMEOUT)
        except subprocess.CalledProcessError as exc:
            last = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise SetupError(f"building the Docker images failed: {last[0]}") from None
        except subprocess.TimeoutExpired:
            raise SetupError(f"building the Docker images took over {BUILD_SCRIPT_TIMEOUT:.0f}s") from None
        if _image_present(client, image):
            return
    raise SetupError(f"Docker image {image} not found (images are built for the current code): "
                     "run `make images` (docker/build)")


def _image_present(client: DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def node_source_files(root: str = PROJECT_ROOT) -> list[str]:
    """The files the node image carries: the project's Python packages, sorted, relative to `root`.

    Compiled files, caches and Go modules (checkers/porcupine) stay out.
    """
    files = []
    for package in NODE_PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, package)):
            if "go.mod" in filenames:
                dirnames[:] = []
                continue
            dirnames[:] = [d for d in dirnames
                           if not d.startswith(".") and d != "__pycache__" and not d.endswith(".egg-info")]
            for name in filenames:
                if name.startswith(".") or name.endswith((".pyc", ".so", ".o", ".h")):
                    continue
                files.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(files)


def installed_path(relative: str) -> str:
    """Where a source file (relative to the repository) lives in the installed package tree."""
    top, _, rest = relative.partition(os.sep)
    return os.path.join(NODE_PACKAGES[top], rest)


def source_hash(root: str = PROJECT_ROOT) -> str:
    """A short hash of the node image's content: its Dockerfile and every file it carries."""
    digest = hashlib.sha256()
    for relative in [NODE_DOCKERFILE, *node_source_files(root)]:
        with open(os.path.join(root, relative), "rb") as fh:
            digest.update(f"{relative}\0{hashlib.sha256(fh.read()).hexdigest()}\n".encode())
    return digest.hexdigest()[:16]


def extras_hash(packages: Iterable[str] = (), files: Iterable[tuple[str, str]] = ()) -> str:
    """A short hash of what a system adds to the node image (packages, files' contents); "" for nothing."""
    packages, files = sorted(set(packages)), sorted(files)
    if not packages and not files:
        return ""
    digest = hashlib.sha256(json.dumps(packages).encode())
    for target, source in files:
        with open(source, "rb") as fh:
            digest.update(f"{target}\0{hashlib.sha256(fh.read()).hexdigest()}\n".encode())
    return digest.hexdigest()[:10]


def node_image(root: str = PROJECT_ROOT, repository: str = IMAGE_REPOSITORY,
               traits: SystemTraits = DEFAULT_TRAITS) -> str:
    """The node image built for the code in `root` and the system's `traits` (extra packages, files).

    NODE_IMAGE_ENV, when set, names another one.
    """
    extra = extras_hash(traits.image_packages, traits.image_files)
    return os.environ.get(NODE_IMAGE_ENV) or f"{repository}/node:{source_hash(root)}" + (f"-{extra}" if extra else "")


def build_arguments(traits: SystemTraits = DEFAULT_TRAITS) -> list[str]:
    """docker/build's arguments for a node image with the system's extra packages and files."""
    arguments = [f"--package={package}" for package in traits.image_packages]
    return arguments + [f"--file={target}={source}" for target, source in traits.image_files]


def toxiproxy_image(repository: str = IMAGE_REPOSITORY) -> str:
    return f"{repository}/toxiproxy:latest"
