"""Memory of processes as the kernel counts it: sampled resident sets, and a process's own high-water mark."""

from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def resident_bytes(pid: int) -> int | None:
    """The resident set of ``pid`` now, or None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def group_members(pgid: int) -> list[int]:
    """Every process of the process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command may hold spaces and parentheses: the fields that follow come after its last ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class GroupSampler:
    """Samples the resident set of every process of a group, every ``interval`` seconds, from a thread.

    ``peaks`` holds each process's largest sample; ``mark()`` starts a new window, after which
    ``peaks`` and ``baseline`` concern that window only (``baseline``: each process's resident set
    when the window began).
    """

    def __init__(self, pgid: int, interval: float = 0.005) -> None:
        self.pgid = pgid
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.baseline: dict[int, int] = {}
        self._members: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> GroupSampler:
        self._members = group_members(self.pgid)
        self.mark()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def mark(self) -> None:
        """Begin a new window: forget the peaks so far, take each process's resident set as its baseline."""
        with self._lock:
            self._members = group_members(self.pgid)
            self.baseline = {pid: size for pid in self._members if (size := resident_bytes(pid)) is not None}
            self.peaks = dict(self.baseline)

    def growth(self) -> dict[int, int]:
        """How far each process rose above its baseline in this window (new processes: above zero)."""
        with self._lock:
            return {pid: peak - self.baseline.get(pid, 0) for pid, peak in self.peaks.items()}

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(self.interval):
            rounds += 1
            with self._lock:
                if rounds % 100 == 0:  # a pool process may be replaced: look for the group's members again
                    self._members = group_members(self.pgid)
                for pid in self._members:
                    size = resident_bytes(pid)
                    if size is not None and size > self.peaks.get(pid, 0):
                        self.peaks[pid] = size
