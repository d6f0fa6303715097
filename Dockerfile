# syntax=docker/dockerfile:1
# The durable-topic-operator image: `docker build -t durable-topic-operator:0.1.0 .`
# Stage 1 builds the wheel of the operator and the wheels of its dependencies; stage 2 installs
# them into a clean slim Python with no compiler, and runs as a non-root numeric user.

# The base is pinned to a patch release; renovate or a person bumps it (one line, both stages).
# A build without a registry passes its own Debian bookworm Python as BASE_IMAGE (tests/testbed/image.py).
ARG BASE_IMAGE=docker.io/library/python:3.11.14-slim-bookworm
# checkov:skip=CKV_DOCKER_7:the FROMs name the BASE_IMAGE argument, whose default above carries the patch tag

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# The operator's wheel, then the wheels of everything it needs (binary wheels: no compiler).
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m pip wheel --only-binary=:all: --wheel-dir /wheels /wheels/durable_topic_operator-*.whl

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="durable-topic-operator" \
      org.opencontainers.image.description="Kubernetes operator that makes Kafka topics durable by construction" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/durable-topic-operator/durable-topic-operator" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Install from the wheels of stage 1 only (no index), and check that the command runs.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels durable-topic-operator==${VERSION} \
    && durabletopic --version
USER 10001:10001
WORKDIR /tmp
EXPOSE 9102 8080
# No HEALTHCHECK: Kubernetes ignores Docker's HEALTHCHECK and probes /healthz itself (the
# chart's livenessProbe), and the same image runs one-shot commands (audit, validate, plan)
# that a health check would wrongly mark unhealthy.
HEALTHCHECK NONE
ENTRYPOINT ["durabletopic"]
CMD ["run"]
