"""The worker's default concurrency: one process per CPU it may use, whatever the machine has."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3thumbs.cli.services import worker_argv
from s3thumbs.cpus import available_cpus, cgroup_cpu_limit


def cgroup(tmp_path: Path, lines: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(lines)
    return root, proc


def affinity() -> int:
    return len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000\n", None), ("200000 100000\n", 2.0), ("150000 100000\n", 1.5), ("50000 100000\n", 0.5)],
)
def test_cgroup_v2_cpu_max(tmp_path, cpu_max, expected):
    root, proc = cgroup(tmp_path, "0::/\n", {"cpu.max": cpu_max})

    assert cgroup_cpu_limit(root, proc) == expected


def test_the_tightest_limit_on_the_way_up_counts(tmp_path):
    root, proc = cgroup(
        tmp_path,
        "0::/kubepods/pod1/c1\n",
        {
            "kubepods/cpu.max": "max 100000",
            "kubepods/pod1/cpu.max": "100000 100000",
            "kubepods/pod1/c1/cpu.max": "max 100000",
        },
    )

    assert cgroup_cpu_limit(root, proc) == 1.0


@pytest.mark.parametrize(("quota", "expected"), [("-1", None), ("300000", 3.0)])
def test_cgroup_v1_cfs_quota(tmp_path, quota, expected):
    root, proc = cgroup(
        tmp_path,
        "4:memory:/x\n3:cpu,cpuacct:/\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": quota, "cpu,cpuacct/cpu.cfs_period_us": "100000"},
    )

    assert cgroup_cpu_limit(root, proc) == expected


def test_no_cgroup_information_means_no_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path, tmp_path / "missing") is None


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("50000 100000", 1), ("100000 100000", 1), ("150000 100000", 2), ("max 100000", None)]
)
def test_processes_follow_the_cpu_limit_rounded_up_never_past_the_affinity(tmp_path, cpu_max, expected):
    root, proc = cgroup(tmp_path, "0::/\n", {"cpu.max": cpu_max})

    assert available_cpus(root, proc) == min(expected or affinity(), affinity())


def test_concurrency_defaults_to_the_cpus():
    assert worker_argv(["--loglevel", "DEBUG"], 3) == [
        "worker",
        "--queues",
        "s3thumbs",
        "--loglevel",
        "INFO",
        "--concurrency",
        "3",
        "--loglevel",
        "DEBUG",
    ]


@pytest.mark.parametrize(
    "chosen",
    [["--concurrency", "5"], ["--concurrency=5"], ["-c", "5"], ["-c5"], ["--autoscale", "4,1"], ["--autoscale=4,1"]],
)
def test_a_concurrency_the_user_chose_is_kept(chosen):
    argv = worker_argv(["--pool", "prefork", *chosen], 3)

    assert argv[-len(chosen) :] == chosen
    assert "3" not in argv
