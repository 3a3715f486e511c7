"""docker/build's inputs (apt sources, package list, node files) and the images it made."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from docker.client import DockerClient

from faultbed.cluster.docker import IMAGE_REPOSITORY, node_image, node_source_files, source_hash, toxiproxy_image
from tests.docker.conftest import own_labels

ROOT = Path(__file__).resolve().parents[2]


def load_docker_module(name: str) -> ModuleType:
    """A module of docker/ (not a package: `docker` is the SDK's name)."""
    if name != "apt_sources":
        load_docker_module("apt_sources")  # images.py imports it as a top-level module
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docker" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_mirror_comes_from_deb822_and_one_line_sources_and_skips_disabled_ones(tmp_path):
    apt_sources = load_docker_module("apt_sources")
    write(tmp_path, "etc/apt/sources.list", "# nothing\ndeb-src http://src.example/debian bookworm main\n")
    write(tmp_path, "etc/apt/sources.list.d/debian.sources", (
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm-security\nComponents: main\n"
        "Enabled: no\n"))
    write(tmp_path, "etc/apt/sources.list.d/security.list",
          "deb [signed-by=/k.gpg arch=amd64] http://security.example/debian-security bookworm-security main\n")
    write(tmp_path, "etc/apt/sources.list.d/other.list.disabled", "deb http://ignored.example/ bookworm main\n")
    assert apt_sources.mirror_lines("bookworm", str(tmp_path)) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://security.example/debian-security bookworm-security main",
    ]


def test_no_source_for_the_suite_is_a_clear_error(tmp_path):
    apt_sources = load_docker_module("apt_sources")
    write(tmp_path, "etc/apt/sources.list", "deb http://mirror.example/debian trixie main\n")
    with pytest.raises(LookupError, match="no apt source for Debian bookworm"):
        apt_sources.mirror_lines("bookworm", str(tmp_path))


def test_base_tag_follows_the_package_list_and_nothing_else():
    images = load_docker_module("images")
    packages = images.base_packages()
    assert {"python3", "python3-pysyncobj", "iproute2"} <= set(packages)
    assert images.base_image(packages, "faultbed") == images.base_image(list(reversed(packages)), "faultbed")
    assert images.base_image(packages, "faultbed") != images.base_image(packages + ["jq"], "faultbed")


def test_node_image_carries_the_python_packages_and_no_caches_or_go_modules():
    files = node_source_files()
    assert "cluster/docker/backend.py" in files and "faultbed/spec.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".so"))]
    assert not [f for f in files if f.startswith("checkers/porcupine/")]

def test_node_image_is_tagged_by_the_code_unless_named_by_hand(monkeypatch):
    monkeypatch.delenv("FAULTBED_NODE_IMAGE", raising=False)
    assert node_image() == f"{IMAGE_REPOSITORY}/node:{source_hash()}"
    monkeypatch.setenv("FAULTBED_NODE_IMAGE", "somewhere/node:mine")
    assert node_image() == "somewhere/node:mine"


@pytest.mark.docker
def test_built_images_exist_and_the_node_image_runs_the_project_code():
    client = DockerClient.from_env(timeout=60)
    try:
        client.images.get(toxiproxy_image())
        output = client.containers.run(
            node_image(), ["python3", "-c", "import faultbed.cluster.systems.raftkv.node, pysyncobj, requests; print('ok')"],
            remove=True, network_mode="none", labels=own_labels())
    finally:
        client.close()
    assert output.strip() == b"ok"


@pytest.mark.docker
def test_a_missing_node_image_is_built_for_the_current_code_and_reported_if_still_missing(monkeypatch):
    import time

    import pytest

    from faultbed.cluster.docker import docker_client, node_image, require_image
    from faultbed.errors import SetupError

    client = docker_client()
    try:
        require_image(client, node_image())  # the current code's image exists, or is built now
        client.images.get(node_image())
        started = time.monotonic()
        with pytest.raises(SetupError, match=r"faultbed/node:no-such-tag not found .*run `make images`"):
            require_image(client, "faultbed/node:no-such-tag")  # docker/build runs, cannot make this tag
        assert time.monotonic() - started < 120, "a cached build is quick"
        monkeypatch.setenv("FAULTBED_NODE_IMAGE", "faultbed/node:no-such-tag")
        started = time.monotonic()
        with pytest.raises(SetupError, match="not found"):
            require_image(client, "faultbed/node:no-such-tag")  # an image named by hand is never built
        assert time.monotonic() - started < 5
    finally:
        client.close()


def test_one_build_of_an_image_at_a_time(tmp_path, monkeypatch):
    # Two pytest workers meeting a system's new image ran the same mmdebstrap side by side (seen in CI).
    import threading
    import time

    images = load_docker_module("images")
    monkeypatch.setattr(images.tempfile, "gettempdir", lambda: str(tmp_path))
    order: list[str] = []

    def build(name: str) -> None:
        with images.building("faultbed/base:abc"):
            order.append(f"{name} in")
            time.sleep(0.3)
            order.append(f"{name} out")

    first = threading.Thread(target=build, args=("first",))
    first.start()
    time.sleep(0.1)
    build("second")
    first.join()
    assert order == ["first in", "first out", "second in", "second out"]
    with images.building("faultbed/base:other"):  # another image is not held up
        pass
