"""Alerts: one ``alerts`` resource (the run's log always, a Slack-compatible webhook when configured)
and the sensor that raises an alert for every failed run."""
