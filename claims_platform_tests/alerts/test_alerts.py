"""Alerts reach the log always and a real webhook (a loopback HTTP server) when configured; failed
runs raise exactly one alert each."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import dagster as dg
import pytest

from claims_platform.assembly.alert_sensors import error_headline, failure_alert, run_failure_alert_sensor
from claims_platform.core.alerts import Alert, AlertsResource, alerts_from_env, slack_payload
from claims_platform_tests.webhook import SECRET_PATH, SECRET_TOKEN, Webhook, serve_webhook


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A real HTTP server on 127.0.0.1 (port 0) answering 200, or ``statuses`` in turn when set."""
    with serve_webhook() as hook:
        yield hook


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nobody listens on: the webhook is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{SECRET_PATH}"


@pytest.fixture
def log(caplog) -> logging.Logger:
    caplog.set_level(logging.DEBUG, logger="claims_platform_tests.alerts")
    return logging.getLogger("claims_platform_tests.alerts")


def _logged(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def _fast(url: str | None, **kwargs) -> AlertsResource:
    # A tiny back-off keeps retry tests fast; the default (0.5 s doubling, capped) is asserted apart.
    return AlertsResource(webhook_url=url, backoff_seconds=0.01, timeout_seconds=2.0, **kwargs)


DRIFT = Alert(
    "warning",
    "Drift on application_scores",
    "3 consecutive drifted days <since 2025-03-01>",
    {"drift share": "0.42", "columns": "age & region"},
    dedupe_key="drift:2025-03-03",
)


def test_slack_payload_shape():
    assert slack_payload(DRIFT) == {
        "text": ":warning: [WARNING] Drift on application_scores — 3 consecutive drifted days &lt;since 2025-03-01&gt;",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":warning: Drift on application_scores",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "3 consecutive drifted days &lt;since 2025-03-01&gt;"},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*drift share*: 0.42\n*columns*: age &amp; region"},
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "claims_platform · warning"}]},
        ],
        "level": "warning",
        "title": "Drift on application_scores",
        "fields": {"drift share": "0.42", "columns": "age & region"},
        "source": "claims_platform",
        "dedupe_key": "drift:2025-03-03",
    }


def test_slack_payload_respects_slack_limits_and_skips_empty_sections():
    payload = slack_payload(Alert("info", "t" * 400, "", {}), source="staging")
    assert [block["type"] for block in payload["blocks"]] == ["header", "context"]
    assert len(payload["blocks"][0]["text"]["text"]) == 150
    assert payload["blocks"][1]["elements"][0]["text"] == "staging · info"
    assert payload["text"].startswith(":information_source: [INFO] ttt") and " — " not in payload["text"]
    assert slack_payload(Alert("error", "x", "y"))["text"] == ":rotating_light: [ERROR] x — y"


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="Unknown alert level"):
        Alert("critical", "x", "y")  # type: ignore[arg-type]


def test_delivered_once_and_logged_at_its_level(webhook, log, caplog):
    result = _fast(webhook.url).send(DRIFT, log=log)
    assert result == {"logged": True, "webhook": "delivered", "attempts": 1}
    assert webhook.received == [slack_payload(DRIFT)]
    alert_records = [r for r in caplog.records if "[ALERT WARNING]" in r.getMessage()]
    assert len(alert_records) == 1 and alert_records[0].levelno == logging.WARNING
    message = alert_records[0].getMessage()
    assert "Drift on application_scores" in message and "drift share=0.42" in message
    assert "3 consecutive drifted days" in message
    assert SECRET_TOKEN not in _logged(caplog) and SECRET_TOKEN not in json.dumps(result)


def test_retries_after_a_server_error(webhook, log, caplog):
    webhook.statuses = [500]
    result = _fast(webhook.url).send(
        Alert("error", "Training failed", "LightGBM diverged", {"month": "2025-02"}), log=log
    )
    assert result == {"logged": True, "webhook": "delivered", "attempts": 2}
    assert len(webhook.received) == 2 and webhook.received[0] == webhook.received[1]
    assert webhook.received[1]["fields"] == {"month": "2025-02"} and webhook.received[1]["level"] == "error"
    assert SECRET_TOKEN not in _logged(caplog)


def test_a_client_error_is_not_retried(webhook, log, caplog):
    webhook.statuses = [400]
    result = _fast(webhook.url).send(Alert("info", "Retrained", "new champion v7"), log=log)
    assert result == {"logged": True, "webhook": "failed: HTTP 400 Bad Request", "attempts": 1}
    assert len(webhook.received) == 1
    assert any(r.levelno == logging.ERROR and "NOT delivered" in r.getMessage() for r in caplog.records)


def test_a_webhook_outage_never_raises_and_is_logged_as_an_error(closed_port_url, log, caplog):
    result = _fast(closed_port_url, retries=2).send(DRIFT, log=log)
    assert result["logged"] is True and result["attempts"] == 3
    assert result["webhook"].startswith("failed: ") and "refused" in result["webhook"].lower()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "after 3 attempt(s)" in errors[0]
    assert any("[ALERT WARNING]" in r.getMessage() for r in caplog.records)  # the log got the alert anyway
    assert SECRET_TOKEN not in _logged(caplog) and SECRET_TOKEN not in json.dumps(result)


def test_a_malformed_url_is_redacted_in_the_failure(log, caplog):
    # http.client quotes the offending path in its error; the token must still not leak.
    result = _fast(f"http://127.0.0.1:9{SECRET_PATH} trailing").send(DRIFT, log=log)
    assert result["webhook"].startswith("failed: ") and result["attempts"] == 1
    assert SECRET_TOKEN not in _logged(caplog) and SECRET_TOKEN not in json.dumps(result)


def test_log_only_when_not_configured_or_not_http(log, caplog):
    assert AlertsResource().send(DRIFT, log=log) == {
        "logged": True,
        "webhook": "not configured",
        "attempts": 0,
    }
    assert _fast("  \n").send(DRIFT, log=log)["webhook"] == "not configured"
    refused = _fast("file:///etc/passwd").send(DRIFT, log=log)
    assert refused == {"logged": True, "webhook": "failed: webhook URL is not http(s)", "attempts": 0}
    assert sum("[ALERT WARNING]" in r.getMessage() for r in caplog.records) == 3


def test_default_back_off_is_bounded():
    resource = AlertsResource()
    assert (resource.timeout_seconds, resource.retries, resource.backoff_seconds) == (5.0, 2, 0.5)


def test_alerts_from_env_wires_the_secret_only_when_set(monkeypatch):
    monkeypatch.delenv("CLAIMS_ALERT_WEBHOOK_URL", raising=False)
    assert alerts_from_env().webhook_url is None
    monkeypatch.setenv("CLAIMS_ALERT_WEBHOOK_URL", "https://hooks.example/services/x")
    # Kept as an EnvVar reference, so the URL never appears in the definitions or the UI.
    assert alerts_from_env().webhook_url == dg.EnvVar("CLAIMS_ALERT_WEBHOOK_URL")


# --- the run-failure sensor ---------------------------------------------------------------------


def test_failure_alert_names_partition_range_launcher_and_steps():
    tags = {
        "dagster/asset_partition_range_start": "2025-01-01",
        "dagster/asset_partition_range_end": "2025-12-31",
        "dagster/backfill": "abcdefgh",
    }
    alert = failure_alert("nightly_scoring", tags, [("application_scores", "KeyError: 'age'")], "run-1")
    assert alert.level == "error" and alert.dedupe_key == "run-failure:run-1"
    assert alert.title == "Run failed: nightly_scoring (2025-01-01…2025-12-31)"
    assert alert.fields == {
        "job": "nightly_scoring",
        "partition": "2025-01-01…2025-12-31",
        "failed steps": "application_scores: KeyError: 'age'",
        "run id": "run-1",
        "launched by": "backfill abcdefgh",
    }
    scheduled = failure_alert(
        "monthly_training", {"dagster/schedule_name": "monthly"}, [], "run-2", "worker died"
    )
    assert scheduled.fields["partition"] == "unpartitioned"
    assert scheduled.fields["launched by"] == "schedule monthly"
    assert "No step failed: worker died." in scheduled.text
    assert failure_alert("j", {}, [], "run-3").fields["launched by"].startswith("manual launch")


def test_failure_alert_caps_the_steps_listed():
    steps = [(f"step_{i}", "ValueError: x") for i in range(25)]
    listed = failure_alert("j", {}, steps, "r").fields["failed steps"]
    assert listed.count("ValueError") == 10 and listed.endswith("… and 15 more")


@dg.op
def load_claims():
    raise ValueError("claims table empty for 2025-03-01\nsee the warehouse load log")


@dg.op
def check_contract():
    raise dg.Failure(description="contract broken: 3 columns missing")


@dg.op
def fine():
    return 1


@dg.job
def failing_claims_job():
    load_claims()
    check_contract()
    fine()


def _fail(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = failing_claims_job.execute_in_process(
        raise_on_error=False, instance=instance, tags={"dagster/partition": "2025-03-01"}
    )
    assert not result.success
    return result


def test_the_sensor_needs_the_alerts_resource():
    assert run_failure_alert_sensor.name == "run_failure_alert_sensor"
    assert run_failure_alert_sensor.required_resource_keys == {"alerts"}
    assert run_failure_alert_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_failed_run_sends_one_alert_naming_job_partition_steps_and_errors(webhook):
    instance = dg.DagsterInstance.ephemeral()
    result = _fail(instance)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"alerts": _fast(webhook.url)},
    ).for_run_failure()
    assert run_failure_alert_sensor(context) is None

    assert len(webhook.received) == 1
    payload = webhook.received[0]
    assert payload["level"] == "error"
    assert payload["title"] == "Run failed: failing_claims_job (2025-03-01)"
    fields = payload["fields"]
    assert fields["job"] == "failing_claims_job" and fields["partition"] == "2025-03-01"
    assert fields["run id"] == result.run_id and fields["launched by"].startswith("manual launch")
    # The user's exception, unwrapped from Dagster's step error, first line only; Failure unqualified.
    assert "load_claims: ValueError: claims table empty for 2025-03-01" in fields["failed steps"]
    assert "check_contract: Failure: contract broken: 3 columns missing" in fields["failed steps"]
    assert "fine" not in fields["failed steps"] and "warehouse load log" not in json.dumps(payload)


def test_the_sensor_alerts_once_per_failed_run_across_ticks(webhook):
    instance = dg.DagsterInstance.ephemeral()
    resources = {"alerts": _fast(webhook.url)}

    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return run_failure_alert_sensor.evaluate_tick(context)

    first = tick(None)  # the first tick only places the cursor
    result = _fail(instance)
    second = tick(first.cursor)
    third = tick(second.cursor)
    assert [payload["fields"]["run id"] for payload in webhook.received] == [result.run_id]
    assert third.cursor == second.cursor != first.cursor


def test_error_headline_without_error():
    assert error_headline(None) == "unknown error"
