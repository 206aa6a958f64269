"""dagster-mlflow's tracking resource, wrapped so the experiment is created where we configure.

Why wrapped (see docs/models.md): dagster-mlflow's `mlflow_tracking` starts one MLflow run per
Dagster run and tags it with the Dagster run id — exactly what tracking needs — but it creates its
experiment with MLflow's default artifact location (a `mlruns/` folder in the working directory).
`claims_mlflow_tracking` creates the experiment first, with the artifact location we configure
(local folder or S3), then hands over to dagster-mlflow unchanged.

What a training run says about itself (`candidate_model` sets it): a name (``claims_model YYYY-MM``), a
description (``mlflow.note.content``: the window trained on and the outcome), the code version (git
commit, else the package version), the Dagster run id, partition and a link back to the Dagster run
(``dagster.run_url``), and its inputs as MLflow datasets whose source is the stored training set and
whose digest is the fingerprint Dagster recorded (:func:`log_datasets`). MLflow is imported lazily.
"""

from __future__ import annotations

import functools
import re
import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING

import dagster as dg

from claims_platform.core import links, settings
from claims_platform.core.settings import REPO_ROOT

if TYPE_CHECKING:
    import pandas as pd

# MLflow's reserved tags (mlflow.utils.mlflow_tags), spelled out so that importing this module does not import MLflow.
RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
CODE_VERSION_TAG = "code_version"
DAGSTER_RUN_URL_TAG = "dagster.run_url"
RUN_NAME_PREFIX = "claims_model"
TRAINING_CONTEXT, EVALUATION_CONTEXT = "training", "evaluation"
SCHEMA_SAMPLE_ROWS = 1_000
_GIT_SHA = re.compile(r"^[0-9a-f]{40}$")


class ArtifactLocationMismatch(RuntimeError):
    """The experiment exists with another artifact location than the one configured."""


def _same_location(a: str, b: str) -> bool:
    def norm(location: str) -> str:
        location = location.rstrip("/")
        return location[len("file://") :] if location.startswith("file://") else location

    return norm(a) == norm(b)


def ensure_experiment(tracking_uri: str | None, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created with ``artifact_location`` if it does not exist yet.

    MLflow fixes an experiment's artifact location when it is created, so a configured location that
    disagrees with the existing experiment's would silently have no effect: that is an error naming
    both and the ways out. ``artifact_location`` None means the tracking server's own artifact root
    (``mlflow-artifacts:`` when it proxies artifacts), whatever it is.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=artifact_location or None)
    if artifact_location and not _same_location(experiment.artifact_location, artifact_location):
        raise ArtifactLocationMismatch(
            f"MLflow experiment {name!r} keeps its artifacts at {experiment.artifact_location}, but "
            f"{settings.ENV_MLFLOW_ARTIFACT_LOCATION} (or the tracking resource's artifact_location) says "
            f"{artifact_location}; MLflow fixes an experiment's artifact location when it is created. Set it back "
            f"to {experiment.artifact_location}, or unset it to use the experiment's, or use a new experiment."
        )
    return experiment.experiment_id


# The part of dagster-mlflow's config schema we use, declared here so that loading the code location
# does not import MLflow (dagster_mlflow imports it at module level, ~1.3 s).
_TRACKING_CONFIG = {
    "experiment_name": dg.Field(dg.StringSource, description="MLflow experiment name."),
    "mlflow_tracking_uri": dg.Field(dg.Noneable(dg.StringSource), default_value=None, is_required=False),
    "extra_tags": dg.Field(
        dg.Permissive(), is_required=False, description="Extra tags for every MLflow run."
    ),
}


@dg.resource(
    config_schema={
        **_TRACKING_CONFIG,
        "artifact_location": dg.Field(
            dg.Noneable(dg.StringSource),
            default_value=None,
            is_required=False,
            description=(
                "Where the experiment's artifacts go (folder, s3://... or mlflow-artifacts:/...), fixed when it is "
                "created; unset: the tracking server's artifact root. An existing experiment elsewhere is an error."
            ),
        ),
    },
    description="dagster-mlflow's tracking resource, with the experiment created at our artifact location.",
)
def claims_mlflow_tracking(context):
    """One MLflow run per Dagster run (dagster-mlflow's `MlFlow`), in an experiment we created."""
    from dagster_mlflow.resources import MlFlow

    from claims_platform.core.services import naming_outages

    config = context.resource_config
    with naming_outages():
        ensure_experiment(
            config.get("mlflow_tracking_uri"), config["experiment_name"], config.get("artifact_location")
        )
        return MlFlow(context)


def training_run_name(month: str) -> str:
    """The MLflow run name of month ``month``'s training (``"2025-03"`` or ``"2025-03-01"``): ``claims_model 2025-03``."""
    return f"{RUN_NAME_PREFIX} {month[:7]}"


def git_commit() -> str | None:
    """The commit checked out in the repo, or None (not a git checkout, git missing or failing)."""
    if not (REPO_ROOT / ".git").exists():  # an installed package: REPO_ROOT is not a checkout
        return None
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and _GIT_SHA.match(commit) else None


@functools.cache
def code_version() -> str:
    """The git commit of the repo when available, else ``claims_platform <package version>`` (once per process)."""
    commit = git_commit()
    if commit:
        return commit
    try:
        return f"claims_platform {package_version('claims_platform')}"
    except PackageNotFoundError:
        return "claims_platform (unknown version)"


@dataclass(frozen=True)
class TrainingRun:
    """What one MLflow training run is: month M's candidate, the Dagster run that trained it, its data.

    ``lineage`` holds the ``training_set_*`` facts of the training set's materialization (window,
    label cutoff, fingerprint, path, rows, producing run), as `candidate_model` reads them.
    """

    month: str  # "YYYY-MM" (a partition key "YYYY-MM-01" is cut to it)
    dagster_run_id: str
    partition: str
    lineage: Mapping[str, str] = field(default_factory=dict)
    dagster_ui_url: str | None = None  # default: CLAIMS_DAGSTER_UI_URL or http://127.0.0.1:3000

    @property
    def name(self) -> str:
        return training_run_name(self.month)

    @property
    def dagster_run_url(self) -> str:
        return links.dagster_run_url(self.dagster_run_id, self.dagster_ui_url)

    def window(self) -> str:
        """The training data in words: which applications, labelled with which outcomes."""
        first, last = (
            self.lineage.get("training_set_window_first_day"),
            self.lineage.get("training_set_window_last_day"),
        )
        cutoff = self.lineage.get("training_set_label_cutoff")
        if not (first and last and cutoff):
            return f"the `training_set` partition {self.partition}"
        return f"applications {first}..{last} labelled with the outcomes known before {cutoff}"

    def training_set(self) -> str:
        """The stored training set in words: rows, where, fingerprint ("" when its materialization was not found)."""
        rows, path = self.lineage.get("training_set_training_rows"), self.lineage.get("training_set_path")
        fingerprint = self.lineage.get("training_set_fingerprint")
        parts = [
            f"{int(rows):,} rows" if rows and rows.isdigit() else "",
            f"stored at `{path}`" if path else "",
            f"fingerprint `{fingerprint}`" if fingerprint else "",
        ]
        return "Training set: " + ", ".join(p for p in parts if p) + "." if any(parts) else ""

    def tags(self) -> dict[str, str]:
        """The tags a training run opens with: name, description, code version, Dagster run and link, lineage."""
        commit = code_version() if _GIT_SHA.match(code_version()) else None
        return {
            RUN_NAME_TAG: self.name,
            NOTE_TAG: self.description("training in progress."),
            CODE_VERSION_TAG: code_version(),
            **({GIT_COMMIT_TAG: commit} if commit else {}),
            DAGSTER_RUN_URL_TAG: self.dagster_run_url,
            "dagster_run_id": self.dagster_run_id,
            "dagster_partition": self.partition,
            "training_month": self.month[:7],
            **{key: str(value) for key, value in self.lineage.items()},
        }

    def description(self, outcome: str) -> str:
        """The run's description (Markdown): what was trained on which data, by which Dagster run, and ``outcome``."""
        what = f"Candidate claims model for {self.month[:7]} (LightGBM, tuned with Optuna), trained on {self.window()}."
        by = (
            f"Trained by Dagster run [{self.dagster_run_id[:8]}]({self.dagster_run_url}) "
            f"(asset `candidate_model`, partition {self.partition}); code version `{code_version()}`."
        )
        return _paragraphs(f"{what} {self.training_set()}", by, f"Outcome: {outcome}")


def _paragraphs(*texts: str) -> str:
    return "\n\n".join(text.strip() for text in texts)


def holdout_figures(metrics: Mapping[str, float], refer_at: float) -> str:
    """The holdout metrics a person compares models on, in words."""
    return (
        f"kappa {metrics['kappa']:.3f} at the decision policy's screen (p >= {refer_at}), "
        f"ROC AUC {metrics['roc_auc']:.3f}, Brier {metrics['brier']:.4f}, ECE {metrics['ece']:.4f}"
    )


def trained_outcome(
    model_name: str,
    version: int,
    holdout_month: str,
    metrics: Mapping[str, float],
    refer_at: float,
    gate_failures: list[str],
) -> str:
    """A trained candidate's outcome: its registered version, holdout figures and quality gate."""
    gate = "passed" if not gate_failures else "FAILED (" + "; ".join(gate_failures) + "): ineligible"
    return (
        f"registered as `{model_name}` version {version}. Out-of-time holdout {holdout_month} "
        f"({int(metrics['rows']):,} rows): {holdout_figures(metrics, refer_at)}. Quality gate {gate}. "
        "The month's champion decision compares it with the incumbent on the same holdout."
    )


def failed_outcome(reason: str) -> str:
    """A candidate whose training failed: why; the champion decision keeps the incumbent."""
    return (
        f"training failed ({reason}). The candidate is ineligible; the champion decision keeps the incumbent."
    )


def version_description(
    run: TrainingRun,
    *,
    holdout_month: str,
    metrics: Mapping[str, float],
    refer_at: float,
    calibration: str,
    mlflow_run_url: str,
) -> str:
    """A model version's description (Markdown): what it is, which month and data, holdout figures, the runs."""
    what = (
        f"Claims model of {run.month[:7]}: the probability that an applicant makes a claim (LightGBM, tuned, "
        f"calibration: {calibration}), trained on {run.window()}. {run.training_set()}"
    )
    holdout = f"Out-of-time holdout {holdout_month} ({int(metrics['rows']):,} rows): {holdout_figures(metrics, refer_at)}."
    runs = (
        f"Trained by Dagster run [{run.dagster_run_id[:8]}]({run.dagster_run_url}); MLflow run [{run.name}]({mlflow_run_url}); "
        f"code version `{code_version()}`. Whether it scores is the champion decision's call (aliases `champion`, "
        "`previous_champion`)."
    )
    return _paragraphs(what, holdout, runs)


def log_datasets(
    training_set: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    month: str,
    holdout_month: str,
    source: str,
    training_digest: str,
    holdout_digest: str,
    targets: str,
) -> None:
    """Log the training set (context ``training``) and the holdout (``evaluation``) into the ACTIVE MLflow run.

    Both datasets name ``source``, where the training set is stored (the holdout is its last labelled
    month), and carry the given digests — the training set's is the fingerprint Dagster recorded,
    so the MLflow dataset and the Dagster materialization are recognisably the same data.
    """
    import mlflow

    with warnings.catch_warnings():
        # MLflow's hint that integer columns cannot hold missing values concerns model signatures;
        # the registered model's signature is typed from the data contract instead (models/packaging.py).
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        training = mlflow.data.from_pandas(
            training_set,
            source=source,
            name=f"training_set_{month[:7]}",
            digest=training_digest,
            targets=targets,
        )
        evaluation = mlflow.data.from_pandas(
            holdout, source=source, name=f"holdout_{holdout_month}", digest=holdout_digest, targets=targets
        )
        for dataset, frame in ((training, training_set), (evaluation, holdout)):
            # MLflow infers a dataset's schema by checking every value of every column in Python (a fifth
            # of a month's training time); the columns' types are the frame's dtypes, read off a sample.
            # `schema` is a cached property: setting it here is what MLflow would compute.
            dataset.__dict__["schema"] = mlflow.models.infer_signature(frame.head(SCHEMA_SAMPLE_ROWS)).inputs
        log_input_once(training, TRAINING_CONTEXT)
        log_input_once(evaluation, EVALUATION_CONTEXT)


def log_input_once(dataset, context: str) -> None:
    """``mlflow.log_input`` into the active run, surviving another run logging the same dataset at once.

    MLflow's SQL store looks a dataset up by (experiment, name, digest) and inserts it when absent, in
    two statements. Two trainings of the same month started together (a scheduled one and a retrain,
    say) both find it absent, and the second insert breaks the unique key (``dataset_pk``). Logging an
    input is idempotent, so the one retry finds the dataset the other run inserted and links it; a
    second failure is a real error and is raised.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.log_input(dataset, context=context)
    except MlflowException:
        mlflow.log_input(dataset, context=context)
