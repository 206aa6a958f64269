"""The dependency audit's triage logic, on pip-audit reports written here (no network)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from claims_platform_tests.security.audit import (
    DEFAULT_IGNORE_FILE,
    AuditError,
    fill_from_latest,
    judge,
    main,
    parse_ignore_file,
)

REPORT = {
    "dependencies": [
        {
            "name": "requests",
            "version": "2.31.0",
            "vulns": [
                {
                    "id": "GHSA-9wx4-h78v-vm56",
                    "aliases": ["CVE-2024-35195"],
                    "fix_versions": ["2.32.0"],
                    "description": "Session verify=False persists.",
                },
            ],
        },
        {
            "name": "jinja2",
            "version": "3.1.3",
            "vulns": [
                {
                    "id": "PYSEC-2024-001",
                    "aliases": ["CVE-2024-22195"],
                    "fix_versions": ["3.1.4"],
                    "description": "xmlattr",
                },
            ],
        },
        {"name": "numpy", "version": "2.4.6", "vulns": []},
        {
            "name": "private-pkg",
            "skip_reason": "Dependency not found on PyPI and could not be audited: private-pkg (1.0)",
        },
    ]
}


def test_the_committed_ignore_file_is_well_formed():
    entries = parse_ignore_file(DEFAULT_IGNORE_FILE.read_text())
    assert all(entry.reason and entry.triaged <= date.today() for entry in entries.values())


def test_an_ignore_line_needs_an_id_a_date_and_a_reason():
    text = "# triaged\n\nGHSA-9wx4-h78v-vm56  2026-11-26  verify=False is never used  # trailing comment\n"
    (entry,) = parse_ignore_file(text).values()
    assert (entry.id, entry.triaged, entry.reason) == (
        "GHSA-9wx4-h78v-vm56",
        date(2026, 11, 26),
        "verify=False is never used",
    )
    for bad in (
        "GHSA-1 no date here",
        "GHSA-1 2026-13-01 bad month",
        "GHSA-1 2026-11-26",
        "A 2026-11-26 x\nA 2026-11-26 y",
    ):
        with pytest.raises(AuditError):
            parse_ignore_file(bad)


def test_untriaged_findings_and_unaudited_packages_are_reported_triaged_ones_pass():
    ignored = parse_ignore_file(
        "CVE-2024-22195 2026-11-26 xmlattr filter unused\nGHSA-gone 2026-01-01 fixed since\n"
    )
    verdict = judge(REPORT, ignored)
    assert [v.id for v in verdict.untriaged] == ["GHSA-9wx4-h78v-vm56"]
    assert [(v.id, e.id) for v, e in verdict.triaged] == [
        ("PYSEC-2024-001", "CVE-2024-22195")
    ]  # matched by alias
    assert verdict.unaudited == ["Dependency not found on PyPI and could not be audited: private-pkg (1.0)"]
    assert [e.id for e in verdict.stale] == ["GHSA-gone"] and verdict.audited == 3


def _run(tmp_path: Path, report: dict, ignore: str, *flags: str) -> int:
    (tmp_path / "report.json").write_text(json.dumps(report))
    (tmp_path / "ignore.txt").write_text(ignore)
    return main(
        ["--report", str(tmp_path / "report.json"), "--ignore-file", str(tmp_path / "ignore.txt"), *flags]
    )


def test_the_exit_status_fails_closed(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    both = "GHSA-9wx4-h78v-vm56 2026-11-26 a\nPYSEC-2024-001 2026-11-26 b\n"
    clean = {"dependencies": REPORT["dependencies"][:3]}
    assert _run(tmp_path, REPORT, "") == 1  # untriaged findings
    assert _run(tmp_path, clean, both) == 0
    assert _run(tmp_path, REPORT, both) == 1  # a package nobody audited is not a pass
    assert _run(tmp_path, REPORT, both, "--allow-unaudited") == 0
    assert _run(tmp_path, REPORT, "", "--allow-unaudited") == 1  # findings still fail
    assert _run(tmp_path, clean, "not a valid line") == 2
    out = capsys.readouterr().out
    assert "FAIL: 1 packages could not be audited" in out and "requests==2.31.0: GHSA-9wx4-h78v-vm56" in out


def _skipped(name: str, version: str) -> dict:
    return {
        "name": name,
        "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} ({version})",
    }


def test_unaudited_pins_are_audited_from_the_latest_release_data_where_they_are_the_latest():
    projects = {
        "clean": {"info": {"version": "1.0"}, "vulnerabilities": []},
        "vulnerable": {
            "info": {"version": "2.0"},
            "vulnerabilities": [
                {"id": "GHSA-aaaa", "aliases": ["CVE-1"], "fixed_in": [], "details": "no fix yet"},
                {"id": "GHSA-old", "aliases": [], "fixed_in": ["1.0"], "withdrawn": "2026-01-01T00:00:00Z"},
            ],
        },
        "behind": {"info": {"version": "3.1"}, "vulnerabilities": []},
        "behind-vulnerable": {
            "info": {"version": "4.1"},
            "vulnerabilities": [{"id": "GHSA-bbbb", "fixed_in": []}],
        },
    }

    def fetch(name: str) -> dict:
        if name not in projects:
            raise OSError("HTTP Error 404: Not Found")
        return projects[name]

    report = {
        "dependencies": [
            _skipped("clean", "1.0"),
            _skipped("vulnerable", "2.0"),
            _skipped("behind", "3.0"),
            _skipped("behind-vulnerable", "4.0"),
            _skipped("gone", "5.0"),
            {"name": "audited", "version": "6.0", "vulns": []},
        ]
    }
    verdict = judge(fill_from_latest(report, fetch), {})
    assert verdict.audited == 3  # clean, vulnerable, audited
    assert [(v.package, v.version, v.id) for v in verdict.untriaged] == [
        ("vulnerable", "2.0", "GHSA-aaaa"),
        ("behind-vulnerable", "4.0", "GHSA-bbbb"),
    ]
    assert verdict.unaudited == [
        "behind (3.0) is behind the latest release 3.1: not audited",
        "behind-vulnerable (4.0) is behind the latest release 4.1: not audited",
        "Dependency not found on PyPI and could not be audited: gone (5.0); project data: HTTP Error 404: Not Found",
    ]
