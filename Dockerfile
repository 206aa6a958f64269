# The claims_platform code location image. One image, three roles (deploy/compose.yaml):
#   code server (the default CMD), `dagster-webserver ...` and `dagster-daemon run`.
# Build: docker build -t claims-platform:$(git rev-parse --short HEAD) .

# --- build: the locked environment, exactly what uv.lock says (as `make install`, without the dev extra)
FROM python:3.11-slim AS build

# uv's version is pinned with the Makefile's UV_VERSION, so the image and a developer resolve alike.
ARG UV_VERSION=0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN pip install "uv==${UV_VERSION}"

WORKDIR /src
# Dependencies first, in their own layer: a code change does not re-install them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.11
COPY claims_platform ./claims_platform
# --no-editable: the package is copied into the venv, so the runtime stage needs no source tree.
RUN uv sync --frozen --no-dev --no-editable --python /usr/local/bin/python3.11

# --- runtime
FROM python:3.11-slim

# LightGBM needs OpenMP's runtime (libgomp), which the slim image lacks. Debian's security updates
# move the exact version, so it is not pinned; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --create-home --home-dir /home/dagster dagster

COPY --from=build /opt/venv /opt/venv

# Three instance folders: the one-host/shared-storage profile (default), the ECS profile (set
# DAGSTER_HOME=/opt/dagster/ecs on the ECS task definitions) and the Kubernetes one (/opt/dagster/k8s).
COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
COPY deploy/ecs/dagster.yaml /opt/dagster/ecs/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/ecs/workspace.yaml
COPY deploy/k8s/dagster.yaml /opt/dagster/k8s/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/k8s/workspace.yaml

ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    OMP_WAIT_POLICY=PASSIVE

# Runs write nothing to the image: storage is S3, PostgreSQL and MLflow. /home/dagster is scratch.
USER 10001:10001
WORKDIR /home/dagster

EXPOSE 4000
# For the code server (the default command); compose gives the webserver and the daemon their own.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]

CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "claims_platform.definitions", "--location-name", "claims_platform"]
