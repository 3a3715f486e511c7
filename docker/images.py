"""Builds faultbed's Docker images on this machine, without any registry (run by docker/build).

    faultbed/base:<hash>        Debian bookworm from mmdebstrap + `docker import`; the hash covers the
                                package list (docker/base-packages.txt) and the recipe, not the mirror
    faultbed/toxiproxy:latest   base + the static toxiproxy-server that scripts/setup built
    faultbed/node:<code hash>   base + the project's Python packages (cluster.docker.node_image)
    faultbed/sshhost:<hash>     base + openssh-server, pytest, xdist, rich: the ssh backend's test hosts
                                (cluster/ssh/testhosts.py; `--ssh-host` builds it and prints its tag)

Each image is built only when its tag is missing or its base changed. The apt mirror
is read from this machine's apt sources at build time (docker/apt_sources.py).
With a registry, `--base debian:bookworm-slim` installs the packages with apt instead.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Iterator

import docker.errors
from docker.client import DockerClient

from apt_sources import mirror_lines
from faultbed.cluster.docker import (IMAGE_REPOSITORY, NODE_DOCKERFILE, NODE_IMAGE_ENV, PROJECT_ROOT, docker_client,
                                     installed_path, node_image, node_source_files, source_hash, toxiproxy_image)
from faultbed.cluster.systems import SystemTraits
from faultbed.errors import FaultbedError

log = logging.getLogger("docker/build")

DOCKER_DIR = os.path.join(PROJECT_ROOT, "docker")
PACKAGES_FILE = os.path.join(DOCKER_DIR, "base-packages.txt")
TOXIPROXY_DOCKERFILE = os.path.join(DOCKER_DIR, "toxiproxy.Dockerfile")
TOXIPROXY_BINARY = os.path.join(PROJECT_ROOT, ".tools", "bin", "toxiproxy-server")
SUITE = "bookworm"
VARIANT = "apt"
# Everything that shapes the base image besides the package list; part of its tag.
MMDEBSTRAP_OPTIONS = (
    f"--variant={VARIANT}",
    "--format=tar",
    '--aptopt=APT::Install-Recommends "false"',
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
)
IMAGE_CHANGES = ("ENV LANG=C.UTF-8",
                 "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 'CMD ["/bin/bash"]')
LABEL_BASE = "faultbed.base"
MMDEBSTRAP_TIMEOUT = 1800
BUILD_TIMEOUT = 900
KEEP_OLD_TAGS = 4
# What a test host of the ssh backend adds to the base (cluster/ssh/testhosts.py): an sshd, and what a host
# needs to run a share of a chaos suite itself (docs/REMOTE.md, "Campaigns across machines").
SSH_HOST_PACKAGES = ("openssh-server", "python3-pytest", "python3-pytest-xdist", "python3-rich")


def base_packages(path: str = PACKAGES_FILE) -> list[str]:
    """The package list: one name per line, `#` comments."""
    with open(path, encoding="utf-8") as fh:
        names = [line.split("#", 1)[0].strip() for line in fh]
    return sorted({name for name in names if name})


def base_image(packages: list[str], repository: str) -> str:
    """faultbed/base:<hash of the recipe and the packages> (the mirror is not part of it)."""
    recipe = json.dumps({"suite": SUITE, "options": MMDEBSTRAP_OPTIONS, "changes": IMAGE_CHANGES,
                         "packages": sorted(set(packages))}, sort_keys=True)
    return f"{repository}/base:{hashlib.sha256(recipe.encode()).hexdigest()[:16]}"


def image_exists(client: DockerClient, tag: str) -> Any:
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def ensure_mmdebstrap() -> None:
    """Install mmdebstrap with apt-get when it is missing."""
    if shutil.which("mmdebstrap"):
        return
    log.info("installing mmdebstrap")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, timeout=600, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "mmdebstrap"], check=True, timeout=600, env=env,
                   stdout=subprocess.DEVNULL)


@contextmanager
def building(tag: str) -> Iterator[None]:
    """One build of `tag` at a time on this machine (pytest workers meeting the same system's image
    would otherwise run the same mmdebstrap side by side); the caller looks for the image again inside."""
    directory = os.path.join(tempfile.gettempdir(), "faultbed-image-builds")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, tag.replace("/", "_").replace(":", "_") + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_base(client: DockerClient, tag: str, packages: list[str]) -> None:
    """mmdebstrap a Debian tarball from this machine's mirror and import it as `tag`."""
    ensure_mmdebstrap()
    mirrors = mirror_lines(SUITE)
    log.info("mmdebstrap %s from %s", SUITE, ", ".join(line.split()[1] for line in mirrors))
    with tempfile.TemporaryDirectory(prefix="faultbed-base-") as tmp:
        tarball = os.path.join(tmp, "base.tar")
        command = ["mmdebstrap", *MMDEBSTRAP_OPTIONS, f"--include={','.join(packages)}", SUITE, tarball, *mirrors]
        result = subprocess.run(command, timeout=MMDEBSTRAP_TIMEOUT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        if result.returncode != 0:
            tail = result.stdout.decode(errors="replace").strip().splitlines()[-15:]
            raise FaultbedError("mmdebstrap failed:\n" + "\n".join(tail))
        repository, _, version = tag.rpartition(":")
        client.api.import_image_from_file(tarball, repository=repository, tag=version, changes=list(IMAGE_CHANGES))
    if image_exists(client, tag) is None:
        raise FaultbedError(f"docker import did not produce {tag}")


def build_dockerfile(client: DockerClient, tag: str, dockerfile: str, files: dict[str, str],
                     buildargs: dict[str, str], labels: dict[str, str], nocache: bool) -> None:
    """Build `dockerfile` in a context holding only `files` (context path -> source path)."""
    with tempfile.TemporaryDirectory(prefix="faultbed-context-") as context:
        shutil.copyfile(dockerfile, os.path.join(context, "Dockerfile"))
        os.makedirs(os.path.join(context, "files"))  # a system file's files (node.Dockerfile); may stay empty
        for target, source in files.items():
            path = os.path.join(context, target)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copy2(source, path)
        try:
            client.images.build(path=context, tag=tag, buildargs=buildargs, labels=labels, rm=True,
                                forcerm=True, nocache=nocache, timeout=BUILD_TIMEOUT)
        except docker.errors.BuildError as exc:
            lines = [str(chunk.get("stream") or chunk.get("error") or "").rstrip() for chunk in exc.build_log]
            raise FaultbedError(f"building {tag} failed: {exc.msg}\n" + "\n".join(l for l in lines if l)[-2000:])


def prune_tags(client: DockerClient, repository: str, keep: set[str]) -> None:
    """Untag all but the newest few images of `repository` (images in use stay)."""
    images = sorted(client.images.list(name=repository), key=lambda i: i.attrs.get("Created", ""), reverse=True)
    old = [tag for image in images[KEEP_OLD_TAGS:] for tag in image.tags if tag not in keep]
    for tag in old:
        try:
            client.images.remove(tag, noprune=False)
            log.info("removed old image %s", tag)
        except docker.errors.APIError:
            pass


def build_all(repository: str, nocache: bool = False, registry_base: str | None = None,
              extra_packages: tuple[str, ...] = (), extra_files: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """Build (or find) the three images; returns their tags and what each took in seconds.

    `extra_packages` and `extra_files` (a system file's [docker]) make a node image of their own,
    on a base holding those packages too: faultbed/node:<code hash>-<extras hash>.
    """
    client = docker_client(timeout=BUILD_TIMEOUT)
    packages = sorted(set(base_packages()) | set(extra_packages))
    report: dict[str, Any] = {}
    started = time.monotonic()
    buildargs: dict[str, str] = {}
    if registry_base:
        base = registry_base
        buildargs = {"BASE": base, "APT_PACKAGES": " ".join(packages)}
    else:
        base = base_image(packages, repository)
        with building(base):
            if nocache or image_exists(client, base) is None:
                build_base(client, base, packages)
                report["base_built"] = True
        buildargs = {"BASE": base}
    report["base"], report["base_seconds"] = base, time.monotonic() - started

    started = time.monotonic()
    toxiproxy = toxiproxy_image(repository)
    with open(TOXIPROXY_BINARY, "rb") as fh:
        binary_hash = hashlib.sha256(fh.read()).hexdigest()[:16]
    wanted = {LABEL_BASE: base, "faultbed.toxiproxy": binary_hash}
    found = image_exists(client, toxiproxy)
    if nocache or found is None or any(found.labels.get(k) != v for k, v in wanted.items()):
        if not os.access(TOXIPROXY_BINARY, os.X_OK):
            raise FaultbedError(f"{TOXIPROXY_BINARY} missing: run scripts/setup")
        toxiproxy_args = dict(buildargs, APT_PACKAGES="iproute2") if registry_base else buildargs
        build_dockerfile(client, toxiproxy, TOXIPROXY_DOCKERFILE, {"toxiproxy-server": TOXIPROXY_BINARY},
                         toxiproxy_args, wanted, nocache)
        report["toxiproxy_built"] = True
    report["toxiproxy"], report["toxiproxy_seconds"] = toxiproxy, time.monotonic() - started

    started = time.monotonic()
    traits = SystemTraits(image_packages=tuple(extra_packages), image_files=tuple(extra_files))
    node = node_image(PROJECT_ROOT, repository, traits) if NODE_IMAGE_ENV not in os.environ else \
        f"{repository}/node:{source_hash(PROJECT_ROOT)}"
    found = image_exists(client, node)
    if nocache or found is None or found.labels.get(LABEL_BASE) != base:
        files = {os.path.join("src", installed_path(f)): os.path.join(PROJECT_ROOT, f)
                 for f in node_source_files(PROJECT_ROOT)}
        # The system's own files; the list itself always exists, so `COPY files/ /` never finds nothing.
        files.update({os.path.join("files", target.lstrip("/")): source for target, source in extra_files})
        build_dockerfile(client, node, os.path.join(PROJECT_ROOT, NODE_DOCKERFILE), files, buildargs,
                         {LABEL_BASE: base}, nocache)
        report["node_built"] = True
    report["node"], report["node_seconds"] = node, time.monotonic() - started

    prune_tags(client, f"{repository}/node", {node, f"{repository}/node:{source_hash(PROJECT_ROOT)}"})
    if not registry_base:
        prune_tags(client, f"{repository}/base", {base})
    client.close()
    return report


def build_ssh_host(repository: str, nocache: bool = False) -> str:
    """faultbed/sshhost:<hash>: the base packages plus an sshd and pytest, for the ssh backend's test hosts."""
    client = docker_client(timeout=BUILD_TIMEOUT)
    packages = sorted(set(base_packages()) | set(SSH_HOST_PACKAGES))
    tag = f"{repository}/sshhost:" + base_image(packages, repository).rpartition(":")[2]
    with building(tag):
        if nocache or image_exists(client, tag) is None:
            build_base(client, tag, packages)
    prune_tags(client, f"{repository}/sshhost", {tag})
    client.close()
    return tag


def remove_repository(repository: str) -> None:
    """Remove every image of `repository` (e.g. a benchmark's temporary one)."""
    client = docker_client(timeout=BUILD_TIMEOUT)
    for kind in ("node", "toxiproxy", "base", "sshhost"):
        for image in client.images.list(name=f"{repository}/{kind}"):
            for tag in image.tags:
                try:
                    client.images.remove(tag, force=True)
                except docker.errors.APIError as exc:
                    log.warning("cannot remove %s: %s", tag, exc)
    client.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="docker/build", description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default=IMAGE_REPOSITORY, help="image name prefix (default %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="rebuild everything from scratch")
    parser.add_argument("--base", metavar="IMAGE", help="start from IMAGE (e.g. debian:bookworm-slim) and apt")
    parser.add_argument("--print-packages", action="store_true", help="print the base package list and exit")
    parser.add_argument("--remove", action="store_true", help="remove the repository's images and exit")
    parser.add_argument("--json", action="store_true", help="print tags and timings as JSON")
    parser.add_argument("--ssh-host", action="store_true",
                        help="build (or find) only the ssh backend's test host image and print its tag")
    parser.add_argument("--package", action="append", default=[], metavar="NAME",
                        help="a Debian package a system needs in its node image (repeatable)")
    parser.add_argument("--file", action="append", default=[], metavar="TARGET=SOURCE",
                        help="a file copied into the node image at the absolute path TARGET (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="docker/build: %(message)s")
    try:
        if args.print_packages:
            print(" ".join(base_packages()))
            return 0
        if args.remove:
            remove_repository(args.repository)
            return 0
        if args.ssh_host:
            print(build_ssh_host(args.repository, args.no_cache))
            return 0
        extra_files = tuple(tuple(item.split("=", 1)) for item in args.file)
        if any(len(pair) != 2 or not pair[0].startswith("/") for pair in extra_files):
            raise FaultbedError("--file takes /ABSOLUTE/TARGET=SOURCE")
        report = build_all(args.repository, args.no_cache, args.base, tuple(args.package),
                           extra_files)  # type: ignore[arg-type]
    except (FaultbedError, LookupError, docker.errors.DockerException, subprocess.SubprocessError) as exc:
        print(f"docker/build: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        for kind in ("base", "toxiproxy", "node"):
            what = "built" if report.get(f"{kind}_built") else "up to date"
            print(f"{report[kind]}  {what} ({report[f'{kind}_seconds']:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
