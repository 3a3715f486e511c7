# A faultbed node: the base image plus the project's Python packages (and a system file's files).
# BASE is faultbed/base:<hash> (built by docker/build without a registry); with a
# registry, BASE=debian:bookworm-slim and APT_PACKAGES="$(docker/build --print-packages)"
# give the same image.
ARG BASE
FROM ${BASE}
ARG APT_PACKAGES=""
RUN if [ -n "$APT_PACKAGES" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $APT_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; \
    fi
ENV PYTHONPATH=/opt/faultbed PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8
COPY src/ /opt/faultbed/
COPY files/ /
