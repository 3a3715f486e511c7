# Toxiproxy for the Docker backend: the statically built server (scripts/setup) on the base image,
# which brings `ip`: the backend adds one address per peer to each node network (needs NET_ADMIN).
# With a registry: BASE=debian:bookworm-slim APT_PACKAGES=iproute2.
ARG BASE
FROM ${BASE}
ARG APT_PACKAGES=""
RUN if [ -n "$APT_PACKAGES" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $APT_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY toxiproxy-server /usr/local/bin/toxiproxy-server
ENTRYPOINT ["/usr/local/bin/toxiproxy-server"]
CMD ["-host", "0.0.0.0", "-port", "8474"]
