"""A small, pure scanner for credentials committed to the repository (no git, no I/O but reading files).

``scan_text`` finds credential-looking strings in one file's text; ``scan_files`` reads files and
applies the allow-list. A finding never carries the whole secret: ``Finding.masked`` shows its first
characters only, so a failing test does not copy the credential into CI's log.

What counts (one ``kind`` each):

- ``aws-access-key-id``: ``AKIA``/``ASIA`` and 16 upper-case letters or digits.
- ``aws-secret-access-key``: a name like ``aws_secret_access_key`` / ``secret_key`` given 40 base64 characters.
- ``private-key``: a PEM/OpenSSH/PGP private key block header.
- ``url-password``: ``scheme://user:password@`` whose password is not a documented placeholder.
- ``slack-webhook``: ``hooks.slack.com/services/T…/B…/<token>`` with a real-looking token.
- ``slack-token``: a Slack API token (``xoxb-``, ``xoxp-``…).
- ``secret-assignment``: ``password = "…"``, ``"api_key": "…"`` and the like with a literal, non-placeholder value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Values that stand for a credential rather than being one: template fields, environment
# references, elisions and the words documentation uses. Narrow on purpose.
_PLACEHOLDER = re.compile(
    r"""^(
        \$\{?[A-Za-z_][A-Za-z0-9_]*\}?      # $VAR, ${VAR}
      | \{[A-Za-z_][A-Za-z0-9_.]*\}         # {password} (str.format / f-string field)
      | %\(?[a-z_]*\)?s                     # %s, %(password)s
      | <[^<>]+>                            # <password>
      | \.{3}|…|\*+|x{3,}|X{3,}             # ..., ***, xxx
      | password|passwd|pass|pw|secret|token|redacted|placeholder|changeme-in-prod
      | (your|my)[-_][a-z_-]+               # your-password, my_token
      | example[-_a-z0-9]*                  # example, example-token
    )$""",
    re.VERBOSE | re.IGNORECASE,
)

_SECRET_NAME = r"[A-Za-z0-9_]*(?:password|passwd|pwd|secret|token|api_?key|access_?key|private_?key|client_?secret)[A-Za-z0-9_]*"

RULES: dict[str, re.Pattern[str]] = {
    "aws-access-key-id": re.compile(r"(?<![A-Z0-9])(?P<value>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])"),
    "aws-secret-access-key": re.compile(
        r"(?i)(?:aws_?)?secret_?(?:access_?)?key[\"']?\s*(?::[^=\n]*)?[:=]\s*[\"']?"
        r"(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
    ),
    "private-key": re.compile(r"(?P<value>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)"),
    "url-password": re.compile(
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@'\"<>()]*:(?P<value>[^\s/@'\"<>()]+)@[^\s@]"
    ),
    "slack-webhook": re.compile(
        r"hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/(?P<value>T[A-Za-z0-9]+/[AB][A-Za-z0-9]+/[A-Za-z0-9]{16,})"
    ),
    "slack-token": re.compile(r"(?<![A-Za-z0-9])(?P<value>xox[abposr]-[A-Za-z0-9-]{10,})"),
    "secret-assignment": re.compile(
        rf"(?<![A-Za-z0-9_])(?P<name>{_SECRET_NAME})[\"']?\s*(?::\s*[A-Za-z_\[\]|. ]+?)?\s*(?:=|:|=>)\s*"
        r"(?P<quote>[\"'])(?P<value>[^\"'\s]{3,})(?P=quote)",
        re.IGNORECASE,
    ),
}

# Kinds whose value may be a documented placeholder (a real key id or key block never is).
_PLACEHOLDER_KINDS = {"url-password", "secret-assignment", "slack-webhook"}


@dataclass(frozen=True)
class Finding:
    """One credential-looking string: where, which kind, and the value (only ever shown masked)."""

    path: str
    line: int
    kind: str
    value: str

    @property
    def masked(self) -> str:
        return self.value[:4] + "…" if len(self.value) > 6 else "…"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} ({self.masked})"


@dataclass(frozen=True)
class Allowed:
    """One allowed dummy: exactly this value of this kind in this file, and why it is not a secret."""

    path: str
    kind: str
    value: str
    reason: str

    def covers(self, finding: Finding) -> bool:
        return (finding.path, finding.kind, finding.value) == (self.path, self.kind, self.value)


# Values that say what they are: a test's dummy or canary, an AWS ARN (a reference to a secret held
# in Secrets Manager, not the secret), a variable named after the secret (psql's :'db_password').
_NAMED_STAND_IN = re.compile(
    r"dummy|canary|fake|^arn:aws[a-z-]*:|^[a-z][a-z0-9]*(_[a-z0-9]+)*_(password|secret|token)$",
    re.IGNORECASE,
)


def is_placeholder(value: str) -> bool:
    """Whether ``value`` stands for a credential (``${PGPASSWORD}``, ``<password>``, ``***``, a dummy or
    canary, an ARN…) rather than being one."""
    return bool(_PLACEHOLDER.match(value) or _NAMED_STAND_IN.search(value))


def scan_text(text: str, path: str = "<text>") -> list[Finding]:
    """Every credential-looking string in ``text`` (placeholders excepted), in line order."""
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, rule in RULES.items():
            for match in rule.finditer(line):
                value = match.group("value")
                if kind in _PLACEHOLDER_KINDS and is_placeholder(value):
                    continue
                if kind == "slack-webhook" and re.fullmatch(r"[A-Za-z]+", value.rsplit("/", 1)[-1]):
                    continue  # hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX in docs
                findings.append(Finding(path, number, kind, value))
    # A key assigned by name is found by a specific rule and the generic one: report it once, as the specific kind.
    specific = {(f.line, f.value) for f in findings if f.kind != "secret-assignment"}
    return [f for f in findings if f.kind != "secret-assignment" or (f.line, f.value) not in specific]


def _read_text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary (a PNG screenshot): not text a credential would be pasted into
    return data.decode("utf-8", errors="replace")


def scan_files(
    root: Path, paths: Iterable[str], allowed: Sequence[Allowed] = ()
) -> tuple[list[Finding], list[Allowed]]:
    """Scan ``paths`` (relative to ``root``); returns the findings not allowed, and the allow-list entries never used."""
    findings: list[Finding] = []
    used: set[Allowed] = set()
    for relative in paths:
        file = root / relative
        if not file.is_file():  # deleted in the work tree but still in the index
            continue
        text = _read_text(file)
        if text is None:
            continue
        for finding in scan_text(text, relative):
            entry = next((a for a in allowed if a.covers(finding)), None)
            if entry is None:
                findings.append(finding)
            else:
                used.add(entry)
    return findings, [a for a in allowed if a not in used]
