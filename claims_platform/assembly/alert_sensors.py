"""The run-failure alert sensor: one ``error`` alert per failed run, through the ``alerts`` resource."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from claims_platform.adapters.dagster_internals import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from claims_platform.core.alerts import Alert, AlertsResource
from claims_platform.core.run_origin import launched_by

PARTITION_TAG = "dagster/partition"
# What launched a run, in the order a reader cares about; a run may carry several (a backfill's runs).
MAX_STEPS_LISTED = 10  # a year-long single-run backfill can fail hundreds of steps; Slack caps a section

# Dagster wraps a user exception in one of these; the exception underneath is what a person needs.
_DAGSTER_WRAPPERS = re.compile(r"^Dagster\w*(ExecutionError|FunctionError)$")
_QUALIFIED_CLASS = re.compile(r"^(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*:)")


def error_headline(error: Any) -> str:
    """First line of the root user error in a Dagster ``SerializableErrorInfo`` (``None``: "unknown error").

    Step errors arrive wrapped (``DagsterExecutionStepExecutionError: Error occurred while executing op``)
    with the user's exception as ``cause``; module paths are dropped (``dagster...Failure`` → ``Failure``).
    """
    if error is None:
        return "unknown error"
    while getattr(error, "cause", None) is not None and _DAGSTER_WRAPPERS.match(error.cls_name or ""):
        error = error.cause
    lines = [line.strip() for line in (error.message or "").splitlines() if line.strip()]
    first = lines[0] if lines else (error.cls_name or "unknown error")
    return _QUALIFIED_CLASS.sub(r"\1", first)


def partition_label(tags: Mapping[str, str]) -> str:
    """The run's partition, partition range (single-run backfills), or "unpartitioned"."""
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    start, end = tags.get(PARTITION_RANGE_START_TAG), tags.get(PARTITION_RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}…{end}"
    return "unpartitioned"


def failure_alert(
    job_name: str,
    tags: Mapping[str, str],
    failed_steps: Sequence[tuple[str, str]],
    run_id: str,
    run_error: str | None = None,
) -> Alert:
    """The alert for one failed run (pure).

    ``failed_steps`` are ``(step key, first line of its error)``; ``run_error`` explains failures that
    happened outside any step (a crashed run worker, a failed launch), when no step failed.
    """
    partition = partition_label(tags)
    launcher = launched_by(tags)
    if failed_steps:
        listed = [f"{step}: {headline}" for step, headline in failed_steps[:MAX_STEPS_LISTED]]
        if len(failed_steps) > MAX_STEPS_LISTED:
            listed.append(f"… and {len(failed_steps) - MAX_STEPS_LISTED} more")
        steps = "; ".join(listed)
        cause = f"Failed step(s): {steps}."
    else:
        steps = "none (the run failed outside its steps)"
        cause = f"No step failed: {run_error or 'unknown error'}."
    text = f"Run {run_id} of job {job_name} ({partition}, launched by {launcher}) failed. {cause}"
    fields = {
        "job": job_name,
        "partition": partition,
        "failed steps": steps,
        "run id": run_id,
        "launched by": launcher,
    }
    return Alert(
        "error", f"Run failed: {job_name} ({partition})", text, fields, dedupe_key=f"run-failure:{run_id}"
    )


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Sends one error alert through the `alerts` resource for every failed run of this code location: "
        "job, partition, failed steps with their error, run id and what launched it."
    ),
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
    """Alert once per failed run; the sensor's cursor (managed by Dagster) moves past each run."""
    run = context.dagster_run
    failed_steps = [
        (event.step_key or "?", error_headline(getattr(event.event_specific_data, "error", None)))
        for event in context.get_step_failure_events()
    ]
    failure = context.failure_event
    run_error = getattr(failure.event_specific_data, "error", None)
    alert = failure_alert(
        run.job_name,
        run.tags,
        failed_steps,
        run.run_id,
        run_error=error_headline(run_error) if run_error is not None else failure.message,
    )
    alerts.send(alert, log=context.log)
    # Return nothing: a returned value makes Dagster stop the tick after this run (the rest wait for
    # the next tick) and skip the run reaction it records otherwise.
