"""`redact_url`: passwords, query-string tokens and webhook path tokens masked; everything else kept."""

from __future__ import annotations

import pytest

from claims_platform.core.redaction import MASK, redact_url

# Dummy passwords, put into URLs by f-strings so no URL with a literal password sits in the repo.
FAKE = "not-a-real-one"
AT_FAKE = "pa@ss:word"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # user:password@ -> user:***@ (SQLAlchemy, MLflow servers, S3-compatible endpoints)
        (
            f"postgresql+psycopg2://claims:{FAKE}@db.internal:5432/warehouse",
            "postgresql+psycopg2://claims:***@db.internal:5432/warehouse",
        ),
        (f"https://admin:{FAKE}@mlflow.internal/", "https://admin:***@mlflow.internal/"),
        (f"postgresql://u:{AT_FAKE}@host/db", "postgresql://u:***@host/db"),  # an '@' inside the password
        ("postgresql://claims:@host/db", "postgresql://claims:***@host/db"),
        # query-string credentials
        ("https://mlflow.internal/api?token=abc123&x=1", "https://mlflow.internal/api?token=***&x=1"),
        (
            "https://bucket.s3.amazonaws.com/model.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAX%2F20250101"
            "&X-Amz-Signature=0123abcd&X-Amz-Security-Token=FQoG",
            "https://bucket.s3.amazonaws.com/model.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
            "&X-Amz-Signature=***&X-Amz-Security-Token=***",
        ),
        (
            "https://acct.blob.core.windows.net/c/f?sv=2022&sig=AbC%3D",
            "https://acct.blob.core.windows.net/c/f?sv=2022&sig=***",
        ),
        (
            "https://chat.googleapis.com/v1/spaces/AAA/messages?key=KKK&token=TTT",
            "https://chat.googleapis.com/v1/spaces/AAA/messages?key=***&token=***",
        ),
        (
            "postgresql://host/db?password=pw&sslmode=require",
            "postgresql://host/db?password=***&sslmode=require",
        ),
        (
            "https://h/p?api_key=1&access_token=2&client_secret=3",
            "https://h/p?api_key=***&access_token=***&client_secret=***",
        ),
        # Slack-style webhooks: the path is the secret
        (
            "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/***",
        ),
        ("https://discord.com/api/webhooks/123/tok-en", "https://discord.com/api/webhooks/***"),
        ("https://chat.example.com/hooks/abcdef123456", "https://chat.example.com/hooks/***"),
        ("https://relay.example.com/webhook/id/secret?x=1", "https://relay.example.com/webhook/***?x=1"),
    ],
)
def test_secrets_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////home/me/repo/.local/warehouse.db",
        "sqlite:///relative.db",
        "/home/me/repo/.local/storage",
        "s3://claims-bucket/prefix",
        "http://127.0.0.1:5000",
        "https://mlflow.internal/#/experiments/1?searchFilter=x",
        "postgresql+psycopg2://claims@db.internal/warehouse",  # a user without password: nothing to hide
        "https://hooks.slack.com/",  # a webhook host without a token
        "https://h/p?keyword=climb&monkey=1",  # names that merely contain "key"
        "",
    ],
)
def test_urls_without_secrets_are_unchanged(url: str) -> None:
    assert redact_url(url) == url


def test_urls_inside_text_are_masked_and_the_text_kept() -> None:
    text = (
        f"could not connect to postgresql://claims:{FAKE}@10.0.0.5/warehouse: timeout; "
        "webhook 'https://hooks.slack.com/services/T1/B2/C3' refused (see https://h/x?token=abc)."
    )
    assert redact_url(text) == (
        "could not connect to postgresql://claims:***@10.0.0.5/warehouse: timeout; "
        "webhook 'https://hooks.slack.com/services/***' refused (see https://h/x?token=***)."
    )


def test_redacting_twice_changes_nothing_more() -> None:
    for url in (
        f"postgresql://claims:{FAKE}@db/w",
        "https://hooks.slack.com/services/T/B/X",
        "https://h/p?token=t&X-Amz-Signature=s",
    ):
        once = redact_url(url)
        assert redact_url(once) == once
        assert MASK in once


def test_no_secret_survives() -> None:
    secrets = [FAKE, "tok3n-canary", "sig-canary", "hook-canary"]
    text = " ".join(
        [
            f"postgresql://u:{FAKE}@h/db",
            "https://m/api?access_token=tok3n-canary",
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=sig-canary",
            "https://hooks.slack.com/services/T/B/hook-canary",
        ]
    )
    shown = redact_url(text)
    assert not [secret for secret in secrets if secret in shown]
