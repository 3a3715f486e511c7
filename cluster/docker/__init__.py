"""The Docker backend: every node in its own container, every link through one Toxiproxy container.

Rooms: backend.py (DockerBackend: lifecycle, verbs, Toxiproxy and node containers), images.py
(node/Toxiproxy images: content hash, build), network.py (per-node /26 networks), gc.py (cleanup
by labels, `faultbed gc`), engine.py (the client, labels, shared calls).

Networks and addresses. Each node `ni` sits alone on its own bridge network
`faultbed-<run>-ni`, a /26 taken from FAULTBED_DOCKER_POOL (default
10.213.0.0/16; the Docker daemon refuses overlapping subnets, so parallel runs
simply try the next one). In that subnet:

    .1  the bridge (host side)      .2  node ni        .3  the Toxiproxy container
    .8+j  an extra address of the Toxiproxy container, reserved for peer nj

Docker gives a container one address per network, so the extra addresses are
added inside the Toxiproxy container with `ip addr add` (it has NET_ADMIN);
they lie outside the network's IPAM range (.0/29), so Docker never hands them
out. Node ni's /etc/hosts maps every peer name nj to its reserved address, and
the proxy ni->nj listens there on nj's real port (every node uses the same
ports), forwarding to nj's .2 on nj's network. Bridges are isolated from one
another by Docker's iptables rules and masquerading is off, so a node reaches
nothing but its own network: peers only through Toxiproxy, by their names.

Nodes run with the same identities as anywhere (`n2:7000`), listen on 0.0.0.0
and publish only the client port, on 127.0.0.1 (a port from PortReservation);
the Toxiproxy API is published on 127.0.0.1 the same way. A node's data
directory and its log (<run>/nodes/<node>.log) are bind-mounted at the same
path as on the host and written as the harness's user, so a restart keeps the
data and the log is live. Every container and network carries the labels
`faultbed.run=<run id>` and `faultbed.harness=<pid>:<start time>`; `gc_docker`
removes those whose harness is gone.

Images (built by docker/build): faultbed/node:<hash of the project code> and
faultbed/toxiproxy:latest, both on faultbed/base (Debian from mmdebstrap).
"""

from faultbed.cluster.docker.backend import DockerBackend
from faultbed.cluster.docker.engine import LABEL_HARNESS, LABEL_ROLE, LABEL_RUN, docker_client
from faultbed.cluster.docker.gc import alive, gc_docker, remove_run_resources
from faultbed.cluster.docker.images import (IMAGE_REPOSITORY, NODE_DOCKERFILE, NODE_IMAGE_ENV, PROJECT_ROOT,
                                            build_arguments, installed_path, node_image, node_source_files,
                                            require_image, source_hash, toxiproxy_image)

__all__ = ["DockerBackend", "IMAGE_REPOSITORY", "LABEL_HARNESS", "LABEL_ROLE", "LABEL_RUN", "NODE_DOCKERFILE",
           "NODE_IMAGE_ENV", "PROJECT_ROOT", "alive", "build_arguments", "docker_client", "gc_docker", "installed_path",
           "node_image",
           "node_source_files", "remove_run_resources", "require_image", "source_hash", "toxiproxy_image"]
