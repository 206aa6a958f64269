"""The ``alerts`` resource: every alert goes to the run's log, and to a Slack-compatible webhook when one
is configured.

Delivery is best effort on purpose: an alerting outage must never fail the production run that raised
the alert, so a webhook failure is logged at error level and reported in the return value, not raised.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import dagster as dg
from pydantic import Field

AlertLevel = Literal["info", "warning", "error"]

ENV_ALERT_WEBHOOK_URL = "CLAIMS_ALERT_WEBHOOK_URL"
DEFAULT_SOURCE = "claims_platform"

_EMOJI: dict[str, str] = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:"}
# Slack's documented limits: longer texts are rejected with a 400, which would lose the alert.
_HEADER_LIMIT = 150
_SECTION_LIMIT = 3000
_MAX_BACKOFF_SECONDS = 5.0
_REDACTED = "<webhook redacted>"

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One alert: a level, a one-line title, a text, and key facts shown as fields."""

    level: AlertLevel
    title: str
    text: str
    fields: dict[str, str] = field(default_factory=dict)
    # Lets a receiver that deduplicates (PagerDuty, Opsgenie, a relay) merge repeats of one incident.
    dedupe_key: str | None = None

    def __post_init__(self) -> None:
        if self.level not in get_args(AlertLevel):
            raise ValueError(f"Unknown alert level {self.level!r}; expected one of {get_args(AlertLevel)}")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn_escape(text: str) -> str:
    # Slack treats <...> as links and mentions and & as an entity start; error messages contain both.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """The JSON body of a Slack incoming-webhook message for ``alert``.

    ``text`` is the notification fallback, ``blocks`` the rendered message; ``level``, ``title``,
    ``fields``, ``source`` and ``dedupe_key`` are for machine receivers (Slack ignores unknown keys).
    """
    emoji = _EMOJI[alert.level]
    fields = {str(key): str(value) for key, value in alert.fields.items()}
    fallback = f"{emoji} [{alert.level.upper()}] {alert.title}"
    if alert.text:
        fallback += f" — {alert.text}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _truncate(f"{emoji} {alert.title}", _HEADER_LIMIT),
                "emoji": True,
            },
        }
    ]
    # Slack rejects a section with empty text, so empty parts are left out rather than sent blank.
    if alert.text:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _truncate(_mrkdwn_escape(alert.text), _SECTION_LIMIT)},
            }
        )
    if fields:
        lines = "\n".join(
            f"*{_mrkdwn_escape(key)}*: {_mrkdwn_escape(value)}" for key, value in fields.items()
        )
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(lines, _SECTION_LIMIT)}}
        )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{_mrkdwn_escape(source)} · {alert.level}"}],
        }
    )
    return {
        "text": _truncate(_mrkdwn_escape(fallback), _SECTION_LIMIT),
        "blocks": blocks,
        "level": alert.level,
        "title": alert.title,
        "fields": fields,
        "source": source,
        "dedupe_key": alert.dedupe_key,
    }


def log_line(alert: Alert) -> str:
    """The one line an alert writes to the run's log: level, title, text and fields."""
    line = f"[ALERT {alert.level.upper()}] {alert.title}"
    if alert.text:
        line += f": {alert.text}"
    if alert.fields:
        line += " | " + ", ".join(f"{key}={value}" for key, value in alert.fields.items())
    return line


def _redact(text: str, secret: str) -> str:
    """``text`` with the webhook URL, its path, and every long path segment (the tokens) replaced."""
    from urllib.parse import urlsplit

    if not secret:
        return text
    path = urlsplit(secret).path
    # Longest first, so the whole URL goes before its pieces; error texts may quote any of them.
    segments = [segment for segment in path.split("/") if len(segment) >= 6]
    pieces = [secret, secret.split("://", 1)[-1], path if len(path) > 1 else "", *segments]
    for piece in sorted(filter(None, pieces), key=len, reverse=True):
        text = text.replace(piece, _REDACTED)
    return text


class _DeliveryError(Exception):
    """A webhook delivery failure; ``retryable`` for connection trouble, a timeout, a 5xx or a 429."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


def _post_json(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST ``payload`` once; raise ``_DeliveryError`` when the webhook did not accept it."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        retryable = error.code >= 500 or error.code == 429
        raise _DeliveryError(f"HTTP {error.code} {error.reason}", retryable) from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise _DeliveryError(f"{type(error).__name__}: {reason}", retryable=True) from error


class AlertsResource(dg.ConfigurableResource):
    """Sends alerts: always to the log given (the run's or the sensor's), and to a Slack-compatible
    incoming webhook when ``webhook_url`` is set. Never raises on a delivery failure."""

    webhook_url: str | None = Field(
        default=None,
        description=(
            "Slack-compatible incoming-webhook URL. A secret: set it with "
            f"dg.EnvVar('{ENV_ALERT_WEBHOOK_URL}'), never as a literal. Unset or empty: log only."
        ),
    )
    timeout_seconds: float = Field(default=5.0, description="Timeout of one webhook request.")
    retries: int = Field(
        default=2,
        description="Further attempts after a transient failure (connection error, timeout, 5xx, 429).",
    )
    backoff_seconds: float = Field(
        default=0.5,
        description=f"Wait before the first retry; doubles per retry, capped at {_MAX_BACKOFF_SECONDS} s.",
    )
    source: str = Field(default=DEFAULT_SOURCE, description="Who is speaking, shown under every message.")

    def send(self, alert: Alert, log: Any = None) -> dict[str, Any]:
        """Log ``alert`` at its level, then deliver it to the webhook when one is configured.

        ``log`` is a ``context.log`` or any ``logging.Logger``-like object; the module logger otherwise.
        Returns ``{"logged": True, "webhook": "delivered" | "not configured" | "failed: <reason>",
        "attempts": n}``; the webhook URL appears neither in the logs nor in the result.
        """
        import time

        log = log if log is not None else _logger
        getattr(log, alert.level)(log_line(alert))
        # A URL pasted into a secret store often carries a trailing newline; urllib would refuse it.
        url = (self.webhook_url or "").strip()
        if not url:
            return {"logged": True, "webhook": "not configured", "attempts": 0}

        from urllib.parse import urlsplit

        if urlsplit(url).scheme not in ("http", "https"):
            # urllib would happily "POST" to file:// or ftp:// URLs; a typo must not read local files.
            return self._failed(log, alert, "webhook URL is not http(s)", attempts=0)

        payload = slack_payload(alert, source=self.source)
        max_attempts = 1 + max(0, self.retries)
        for attempt in range(1, max_attempts + 1):
            try:
                _post_json(url, payload, self.timeout_seconds)
            except _DeliveryError as error:
                if not error.retryable or attempt == max_attempts:
                    return self._failed(log, alert, str(error), attempts=attempt)
                time.sleep(min(self.backoff_seconds * 2 ** (attempt - 1), _MAX_BACKOFF_SECONDS))
            except Exception as error:  # alerting must never break the run that alerts
                return self._failed(log, alert, f"{type(error).__name__}: {error}", attempts=attempt)
            else:
                log.info(f"Alert '{alert.title}' delivered to the webhook (attempt {attempt}).")
                return {"logged": True, "webhook": "delivered", "attempts": attempt}
        raise AssertionError("unreachable")  # the loop always returns

    def _failed(self, log: Any, alert: Alert, reason: str, attempts: int) -> dict[str, Any]:
        reason = _redact(_redact(reason, (self.webhook_url or "").strip()), self.webhook_url or "")
        log.error(f"Alert '{alert.title}' NOT delivered to the webhook after {attempts} attempt(s): {reason}")
        return {"logged": True, "webhook": f"failed: {reason}", "attempts": attempts}


def alerts_from_env() -> AlertsResource:
    """The ``alerts`` resource for ``Definitions``: webhook from ``CLAIMS_ALERT_WEBHOOK_URL`` when set.

    ``dg.EnvVar`` on an unset variable fails every run and sensor tick that uses the resource, so the
    webhook is only wired when the variable exists; the URL itself stays an ``EnvVar`` (never a literal
    in the definitions or the UI).
    """
    if os.environ.get(ENV_ALERT_WEBHOOK_URL):
        return AlertsResource(webhook_url=dg.EnvVar(ENV_ALERT_WEBHOOK_URL))
    return AlertsResource()
