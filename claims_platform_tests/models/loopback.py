"""Servers on loopback for the tests: a free port, waiting for an answer, and the processes a launcher left."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_ok(url: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    """Until ``url`` answers 200; fails with the log's tail if ``process`` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"exited ({process.returncode}) before {url} answered:\n{log.read_text()[-4000:]}"
            )
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"no 200 from {url} within {seconds:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.3)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group of ``process`` (started with ``start_new_session``), then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, process group)`` of a live process, from /proc (None when it is gone or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[2]))


def descendants(root: int) -> set[int]:
    """Every live process below ``root``, and every process in the groups they lead (Linux /proc)."""
    stats = {
        int(p.name): s for p in Path("/proc").iterdir() if p.name.isdigit() and (s := _stat(int(p.name)))
    }
    found, frontier = set(), {root}
    while frontier:
        children = {pid for pid, (parent, _) in stats.items() if parent in frontier} - found
        found |= children
        frontier = children
    groups = {stats[pid][1] for pid in found if pid in stats}
    return found | {pid for pid, (_, group) in stats.items() if group in groups and group != os.getpgrp()}


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    return {pid for pid in pids if _stat(pid) is not None}
