"""Dependency audit of the lock file: ``uv export`` the pinned requirements, ``pip-audit`` them, triage.

    python -m claims_platform_tests.security.audit [--ignore-file deploy/audit-ignore.txt]

Where pip-audit cannot audit a package (its PyPI service reads ``/pypi/NAME/VERSION/json``, which a
mirror may not serve), the package is audited from its project's latest-release data when the pin IS
the latest release (see ``fill_from_latest``); ``--no-latest-fallback`` turns that off.

Exit status 0 when every known vulnerability of a locked package is triaged in the ignore file, 1 when
one is not, or when a package could not be audited at all (fail closed: pip-audit itself exits 0 when
it audited nothing, e.g. when the vulnerability service answers 404), 2 on a usage or tool error.
``--allow-unaudited`` reports unaudited packages without failing (for networks where the service is
unreachable); findings still fail.

The ignore file holds one triaged vulnerability a line: ``ID  YYYY-MM-DD  reason`` (the id pip-audit
reports, e.g. GHSA-…/PYSEC-…/CVE-…, or one of its aliases; the date of the triage; why it is safe to
keep for now). ``#`` starts a comment. See docs/security.md for the triage of each entry.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IGNORE_FILE = REPO_ROOT / "deploy" / "audit-ignore.txt"
_IGNORE_LINE = re.compile(r"^(?P<id>\S+)\s+(?P<date>\d{4}-\d{2}-\d{2})\s+(?P<reason>\S.*)$")


class AuditError(Exception):
    """The audit could not run or its input is malformed (exit status 2)."""


@dataclass(frozen=True)
class Ignored:
    id: str
    triaged: date
    reason: str


@dataclass(frozen=True)
class Vulnerability:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    fix_versions: tuple[str, ...] = ()
    description: str = ""

    def ids(self) -> set[str]:
        return {self.id, *self.aliases}

    def __str__(self) -> str:
        fix = f"fixed in {', '.join(self.fix_versions)}" if self.fix_versions else "no fixed version"
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.package}=={self.version}: {self.id}{aliases}, {fix}"


@dataclass
class Verdict:
    untriaged: list[Vulnerability] = field(default_factory=list)
    triaged: list[tuple[Vulnerability, Ignored]] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)  # pip-audit's reason, naming package and version
    stale: list[Ignored] = field(default_factory=list)  # ignore entries that match no finding
    audited: int = 0


def parse_ignore_file(text: str) -> dict[str, Ignored]:
    """The triaged ids of an ignore file; raises ``AuditError`` on a line without id, date and reason."""
    entries: dict[str, Ignored] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        match = _IGNORE_LINE.match(line)
        if match is None:
            raise AuditError(f"ignore file line {number}: expected 'ID  YYYY-MM-DD  reason', got {raw!r}")
        try:
            triaged = date.fromisoformat(match["date"])
        except ValueError:
            raise AuditError(f"ignore file line {number}: not a date: {match['date']!r}") from None
        if match["id"] in entries:
            raise AuditError(f"ignore file line {number}: {match['id']} is listed twice")
        entries[match["id"]] = Ignored(match["id"], triaged, match["reason"].strip())
    return entries


def parse_report(report: dict) -> tuple[list[Vulnerability], list[str], int]:
    """pip-audit's JSON report: its vulnerabilities, the packages it could not audit, and how many it did."""
    vulnerabilities: list[Vulnerability] = []
    unaudited: list[str] = []
    audited = 0
    for dependency in report.get("dependencies", []):
        name, version = dependency["name"], dependency.get("version")
        if dependency.get("skip_reason"):
            # pip-audit's reason names the package and version; a skipped dependency has no version field.
            unaudited.append(
                dependency["skip_reason"]
                if version is None
                else f"{name}=={version}: {dependency['skip_reason']}"
            )
            continue
        audited += dependency.get("counted", True)  # a pin behind its latest release is not audited
        for vuln in dependency.get("vulns", []):
            vulnerabilities.append(
                Vulnerability(
                    package=name,
                    version=version,
                    id=vuln["id"],
                    aliases=tuple(vuln.get("aliases") or ()),
                    fix_versions=tuple(vuln.get("fix_versions") or ()),
                    description=(vuln.get("description") or "").strip(),
                )
            )
    return vulnerabilities, unaudited, audited


def judge(report: dict, ignored: dict[str, Ignored]) -> Verdict:
    """Which findings are triaged, which are not, which packages went unaudited, which entries are stale."""
    vulnerabilities, unaudited, audited = parse_report(report)
    verdict = Verdict(unaudited=unaudited, audited=audited)
    used: set[str] = set()
    for vuln in vulnerabilities:
        entry = next((ignored[i] for i in sorted(vuln.ids()) if i in ignored), None)
        if entry is None:
            verdict.untriaged.append(vuln)
        else:
            verdict.triaged.append((vuln, entry))
            used.add(entry.id)
    verdict.stale = [entry for key, entry in ignored.items() if key not in used]
    return verdict


_SKIPPED = re.compile(r"could not be audited: (?P<name>\S+) \((?P<version>[^()\s]+)\)")


def fetch_project(name: str, timeout: float = 30) -> dict:
    """PyPI's JSON for project ``name`` (its latest release, and that release's known vulnerabilities)."""
    import urllib.request

    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=timeout) as response:
        return json.load(response)


def fill_from_latest(report: dict, fetch=fetch_project, workers: int = 8) -> dict:
    """``report`` with each unaudited dependency audited from its project's latest-release data, where it can be.

    pip-audit's PyPI service asks ``/pypi/NAME/VERSION/json``; where that endpoint is not served (a
    mirror), every package comes back unaudited. The project endpoint still lists the known
    vulnerabilities of the LATEST release: a pin that IS the latest release is audited by it. A pin behind
    the latest stays unaudited, and any vulnerability of the latest release (unfixed there, so most
    likely in the older pin too) is reported against it as well.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(dependency: dict) -> list[dict]:
        match = _SKIPPED.search(dependency.get("skip_reason") or "")
        if match is None:
            return [dependency]
        name, version = match["name"], match["version"]
        try:
            project = fetch(name)
        except Exception as error:  # the dependency simply stays unaudited
            return [{**dependency, "skip_reason": f"{dependency['skip_reason']}; project data: {error}"}]
        latest = project["info"]["version"]
        vulns = [
            {
                "id": v["id"],
                "aliases": v.get("aliases") or [],
                "fix_versions": v.get("fixed_in") or [],
                "description": v.get("details") or v.get("summary") or "",
            }
            for v in project.get("vulnerabilities") or []
            if not v.get("withdrawn")
        ]
        if latest == version:
            return [{"name": name, "version": version, "vulns": vulns, "source": "latest release data"}]
        behind = {
            **dependency,
            "skip_reason": f"{name} ({version}) is behind the latest release {latest}: not audited",
        }
        if not vulns:
            return [behind]
        return [
            behind,
            {
                "name": name,
                "version": version,
                "vulns": vulns,
                "source": f"latest release {latest}",
                "counted": False,
            },
        ]

    dependencies = report.get("dependencies", [])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        filled = [entry for entries in pool.map(one, dependencies) for entry in entries]
    return {**report, "dependencies": filled}


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise AuditError(f"{name} not found (beside {sys.executable} or on PATH): install the dev extra")
    return found


def export_requirements(folder: Path) -> Path:
    """The lock file's pinned requirements (every platform, the dev extra, without the project itself)."""
    path = folder / "requirements.txt"
    command = [
        _tool("uv"),
        "export",
        "--frozen",
        "--no-hashes",
        "--extra",
        "dev",
        "--no-emit-project",
        "--no-header",
        "--format",
        "requirements.txt",
        "--output-file",
        str(path),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AuditError(f"uv export failed: {result.stderr.strip()}")
    return path


def run_pip_audit(requirements: Path, folder: Path, timeout: int) -> dict:
    """pip-audit's JSON report on ``requirements`` (pinned, no resolution, PyPI's vulnerability data)."""
    output = folder / "pip-audit.json"
    command = [
        _tool("pip-audit"),
        "--requirement",
        str(requirements),
        "--no-deps",
        "--disable-pip",
        "--vulnerability-service",
        "pypi",
        "--format",
        "json",
        "--output",
        str(output),
        "--desc",
        "on",
        "--aliases",
        "on",
        "--progress-spinner",
        "off",
        "--timeout",
        str(timeout),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    # 0: nothing found, 1: vulnerabilities found; anything else (or no report) is pip-audit failing.
    if result.returncode not in (0, 1) or not output.exists():
        raise AuditError(f"pip-audit failed (status {result.returncode}): {result.stderr.strip()[-2000:]}")
    return json.loads(output.read_text())


def report_lines(verdict: Verdict, allow_unaudited: bool) -> list[str]:
    lines = [
        f"audited {verdict.audited} locked packages against PyPI's vulnerability data (pip-audit, then latest-release data)"
    ]
    for vuln, entry in verdict.triaged:
        lines.append(f"  triaged {entry.triaged}: {vuln} — {entry.reason}")
    for entry in verdict.stale:
        lines.append(
            f"  note: ignore entry {entry.id} ({entry.triaged}) matches no finding any more: remove it"
        )
    if verdict.unaudited:
        what = "warning" if allow_unaudited else "FAIL"
        lines.append(f"{what}: {len(verdict.unaudited)} packages could not be audited:")
        lines += [f"  {item}" for item in verdict.unaudited[:20]]
        if len(verdict.unaudited) > 20:
            lines.append(f"  … and {len(verdict.unaudited) - 20} more")
    if verdict.untriaged:
        lines.append(f"FAIL: {len(verdict.untriaged)} vulnerabilities not triaged in the ignore file:")
        for vuln in verdict.untriaged:
            lines.append(f"  {vuln}")
            if vuln.description:
                lines.append(f"    {vuln.description.splitlines()[0][:200]}")
        lines.append(
            "  upgrade the package (uv lock --upgrade-package NAME), or triage it: see docs/security.md"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audit", description=__doc__.splitlines()[0])
    parser.add_argument("--ignore-file", type=Path, default=DEFAULT_IGNORE_FILE, help="default: %(default)s")
    parser.add_argument(
        "--allow-unaudited", action="store_true", help="warn, do not fail, on unaudited packages"
    )
    parser.add_argument(
        "--timeout", type=int, default=30, help="socket timeout of one request, s (default: %(default)s)"
    )
    parser.add_argument(
        "--report", type=Path, help="audit this pip-audit JSON report instead of running pip-audit"
    )
    parser.add_argument(
        "--no-latest-fallback",
        action="store_true",
        help="do not audit pip-audit's unaudited packages from their project's latest-release data",
    )
    args = parser.parse_args(argv)
    try:
        ignored = parse_ignore_file(args.ignore_file.read_text() if args.ignore_file.exists() else "")
        if args.report:
            report = json.loads(args.report.read_text())
        else:
            with tempfile.TemporaryDirectory(prefix="audit-") as folder:
                report = run_pip_audit(export_requirements(Path(folder)), Path(folder), args.timeout)
    except AuditError as error:
        print(f"audit: error: {error}", file=sys.stderr)
        return 2
    if not args.no_latest_fallback and any(d.get("skip_reason") for d in report.get("dependencies", [])):
        report = fill_from_latest(report, functools.partial(fetch_project, timeout=args.timeout))
    verdict = judge(report, ignored)
    print("\n".join(report_lines(verdict, args.allow_unaudited)), flush=True)
    failed = bool(verdict.untriaged) or (bool(verdict.unaudited) and not args.allow_unaudited)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
