"""No credential is committed: every file git tracks is scanned (see credential_scan), dummies allowed by name.

The samples below are assembled at run time ("AKIA" + "…") so that this file itself holds no
credential-looking literal and needs no allow-list entry.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from claims_platform.core.settings import REPO_ROOT
from claims_platform_tests.security.credential_scan import Allowed, scan_files, scan_text

# Every entry: one value of one kind in one file, and why it is not a secret. Keep it short.
ALLOWED = [
    Allowed(
        "claims_platform_tests/s3_server.py",
        "secret-assignment",
        "testing",
        "moto's conventional dummy credentials for the loopback S3 server; they keep boto3 off real profiles",
    ),
    Allowed(
        "claims_platform_tests/storage/test_locations.py",
        "secret-assignment",
        "AKIAEXAMPLE",
        "an obviously fake key id (11 characters, not an AWS id) in a unit test of option forwarding",
    ),
    Allowed(
        "claims_platform_tests/webhook.py",
        "secret-assignment",
        "/services/T0CLAIMS/B0ALERTS/s3cr3tT0kenXYZ",
        "the loopback test webhook's canary path: tests assert it never reaches a log",
    ),
    Allowed(
        "claims_platform_tests/security/test_no_credentials_in_repo.py",
        "secret-assignment",
        "testing",
        "the scanner's own sample of an allowed dummy, written to a temporary folder by a test",
    ),
    Allowed(
        "claims_platform_tests/security/test_no_credentials_in_repo.py",
        "secret-assignment",
        "hunter2hunter2",
        "the scanner's own sample inside a binary file, written to a temporary folder (binary files are skipped)",
    ),
    Allowed(
        "claims_platform_tests/webhook.py",
        "secret-assignment",
        "s3cr3tT0kenXYZ",
        "the loopback test webhook's canary token: tests assert it never reaches a log",
    ),
]


def _tracked_files() -> list[str]:
    git = shutil.which("git")
    if git is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: no tracked files to scan")
    listing = subprocess.run(
        [git, "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [path for path in listing.split("\0") if path]


def test_no_tracked_file_holds_a_credential():
    files = _tracked_files()
    assert len(files) > 50  # the listing really is the repository
    findings, unused = scan_files(REPO_ROOT, files, ALLOWED)
    assert not findings, (
        "credential-looking strings in tracked files (values masked). Remove and rotate a real one; "
        "for a test dummy, make it obviously fake or add a narrow entry with a reason to ALLOWED:\n"
        + "\n".join(str(finding) for finding in findings)
    )
    assert not unused, f"allow-list entries that match nothing any more, remove them: {unused}"


# --- the scanner itself --------------------------------------------------------------------------

KEY_ID = "AKIA" + "Q3ZJ7RMXW2HVK5TB"
TEMP_KEY_ID = "ASIA" + "Y6NW2PLQ8RTZ3XKD"
AWS_SAMPLE_40 = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYzQ9sT4uVw2"
SLACK_SAMPLE = "Xq7Lm2Rt9Vb4" + "Nc8Kd3Hs6Wp1"

POSITIVE = {
    "aws-access-key-id": [
        f"key = {KEY_ID}",
        f'"aws_access_key_id": "{TEMP_KEY_ID}"',
        f"export AWS_ACCESS_KEY_ID={KEY_ID}",
    ],
    "aws-secret-access-key": [
        f'aws_secret_access_key = "{AWS_SAMPLE_40}"',
        f"AWS_SECRET_ACCESS_KEY={AWS_SAMPLE_40}",
        f"secret_key: {AWS_SAMPLE_40}",
    ],
    "private-key": [
        "-----BEGIN " + "RSA PRIVATE KEY-----",
        "-----BEGIN " + "OPENSSH PRIVATE KEY-----",
        "-----BEGIN " + "PRIVATE KEY-----",
        "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----",
    ],
    "url-password": [
        "CLAIMS_WAREHOUSE_URL=postgresql+psycopg2://claims:" + "Tr0ub4dor&3@db.internal:5432/warehouse",
        'url = "https://deploy:' + 'gh5-9xPq@artifacts.example.com/simple"',
        "redis://:" + "n0tAPlaceholder@cache:6379/0",
    ],
    "slack-webhook": [
        "CLAIMS_ALERT_WEBHOOK_URL=https://hooks.slack.com/services/T024BE7LD/B01ABCDEF/" + SLACK_SAMPLE,
    ],
    "slack-token": ["token xoxb-" + "1234567890-0987654321-" + SLACK_SAMPLE],
    "secret-assignment": [
        'password = "' + 'hunter2hunter2"',
        'DB_PASSWORD: str = "' + 'S3cure!pass"',
        '"api_key": "' + 'sk_live_51Hx9"',
        "client_secret='" + "a1b2c3d4e5'",
        'self.token = "' + 'ghp_abc123def456"',
    ],
}

NEGATIVE = [
    "# CLAIMS_WAREHOUSE_URL=postgresql+psycopg2://claims@127.0.0.1:5432/warehouse",  # no password at all
    "postgresql://user:${PGPASSWORD}@db:5432/warehouse",  # an environment reference
    "postgresql://user:<password>@db:5432/warehouse",  # a documented placeholder
    "postgresql://scott:***@localhost/test",  # SQLAlchemy's hidden password
    'f"postgresql://{user}:{password}@{host}/{name}"',  # a template
    "https://hooks.slack.com/services/...",  # .env.example's elision
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",  # Slack's docs
    'password = os.environ["PGPASSWORD"]',  # not a literal
    "password = config.password",
    'token = f"{prefix}-{suffix}"',  # built, not stored
    'password = ""',  # empty
    'secret = "..."',
    'aws_session_token="example-token"',
    "webhook_url: str | None = Field(default=None)",
    "def _redact(text: str, secret: str) -> str:",
    "AKIAEXAMPLE",  # too short to be a key id
    "x = 'AKIA' + suffix",
    "sha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'",
    "https://files.pythonhosted.org/packages/62/35/pkg-1.0.tar.gz",
    "mailto:someone@example.com",
    "git@github.com:owner/repo.git",
    'postgres_password="CanaryPg" + secrets.token_hex(10)',
    '"DAGSTER_PG_PASSWORD": "dummy-dagster-password",',
    '"CLAIMS_ECS_SECRET_ARN_PG_PASSWORD": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:pg-AbCdEf",',
    "CREATE ROLE :\"mlflow_user\" LOGIN PASSWORD :'mlflow_password';",
]


@pytest.mark.parametrize(
    ("kind", "line"), [(kind, line) for kind, lines in POSITIVE.items() for line in lines]
)
def test_the_scanner_finds_real_looking_credentials(kind: str, line: str):
    findings = scan_text(f"first line\n{line}\nlast line\n", "sample.txt")
    assert [(f.kind, f.line) for f in findings] == [(kind, 2)]


@pytest.mark.parametrize("line", NEGATIVE)
def test_the_scanner_leaves_placeholders_and_code_alone(line: str):
    assert scan_text(line) == []


def test_a_finding_never_shows_the_whole_secret():
    (finding,) = scan_text('password = "' + 'hunter2hunter2"', "app.py")
    assert "hunter2hunter2" not in str(finding) and str(finding).startswith("app.py:1: secret-assignment")


def test_an_added_credential_fails_the_repository_check(tmp_path: Path):
    (tmp_path / "settings.py").write_text(
        'DEBUG = True\nDATABASE_URL = "postgresql://app:' + 'Zq8-pW3x@db/app"\n'
    )
    (tmp_path / "dummy.py").write_text('AWS_SECRET_ACCESS_KEY = "testing"\n')
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\0\0password = 'hunter2hunter2'")
    allowed = [Allowed("dummy.py", "secret-assignment", "testing", "a dummy")]
    findings, unused = scan_files(tmp_path, ["settings.py", "dummy.py", "logo.png", "deleted.py"], allowed)
    assert [(f.path, f.line, f.kind) for f in findings] == [("settings.py", 2, "url-password")]
    assert unused == []


def test_an_allow_list_entry_covers_only_its_own_file_and_value(tmp_path: Path):
    (tmp_path / "a.py").write_text('password = "' + 'testing"\npassword = "' + 'other-value"\n')
    (tmp_path / "b.py").write_text('password = "' + 'testing"\n')
    allowed = [Allowed("a.py", "secret-assignment", "testing", "a dummy")]
    findings, _ = scan_files(tmp_path, ["a.py", "b.py"], allowed)
    assert [(f.path, f.line) for f in findings] == [("a.py", 2), ("b.py", 1)]
