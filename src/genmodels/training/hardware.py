"""What the machine offers, resolved once when a run is created: the autocast precision for
`trainer.precision = "auto"` and the number of intra-op threads for `trainer.threads = 0`.

Precision "auto" is bf16 where bf16 matrix products run natively and fp32 elsewhere:
  * CPU: the AVX512-BF16 or AMX-BF16 instructions (x86; read from /proc/cpuinfo), where oneDNN's
    bf16 kernels run about twice as fast as fp32; without them bf16 is emulated and slower.
  * CUDA: `torch.cuda.is_bf16_supported()` (Ampere and newer).
  * anything else (mps, ...): fp32.
The resolved value is what config.toml records, so a resumed run keeps it on any machine.
`check_machine` refuses, before a run directory is touched, a precision the device cannot run
and a batch that the processes and micro-batches cannot share out.

Threads 0 ("auto"): one process per core is the rule. torch's default (one thread per core)
for a single process; under torchrun the cores are shared out among the local processes, so
W processes on W cores run one thread each. PyTorch's worker threads spin while they wait, so
a 2-thread step next to another busy process was measured 2-2.5x slower than a 1-thread one:
when the machine is shared, pass --threads 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from genmodels.config import TrainerConfig
from genmodels.errors import ConfigError
from genmodels.training import distributed

CPUINFO = Path("/proc/cpuinfo")
CGROUP_ROOT = Path("/sys/fs/cgroup")   # where Linux mounts the cgroup CPU controller
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
EMULATED_BF16_SLOWDOWN = 7.7   # bf16 / fp32 sampling time measured on an AVX2 CPU without native bf16


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU feature flags of the first processor in /proc/cpuinfo (empty where unreadable)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_has_fast_bf16(flags: set[str] | None = None) -> bool:
    """Whether the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: torch.device, flags: set[str] | None = None) -> tuple[str, str]:
    """(fp32 | bf16 | fp16, why) for trainer.precision on `device`; explicit values pass through."""
    if precision != "auto":
        return precision, "as configured"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", f"auto: {torch.cuda.get_device_name(device)} supports bf16"
        return "fp32", f"auto: {torch.cuda.get_device_name(device)} has no bf16"
    if device.type == "cpu":
        if cpu_has_fast_bf16(flags):
            return "bf16", "auto: the CPU has native bf16 (AVX512-BF16/AMX)"
        return "fp32", "auto: the CPU has no native bf16 (AVX512-BF16/AMX)"
    return "fp32", f"auto: no bf16 autocast on {device.type}"


def check_precision(precision: str, device: torch.device) -> None:
    """ConfigError unless autocast `precision` (fp32, bf16 or fp16, as resolved) runs on `device`."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"trainer.precision fp16 needs a CUDA device (got {device}); use bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"trainer.precision bf16 is not supported by {torch.cuda.get_device_name(device)}; "
                          f"use fp16 (with grad scaling) or fp32")
    if precision != "fp32" and device.type not in ("cpu", "cuda"):
        raise ConfigError(f"trainer.precision {precision} needs a cpu or cuda device (got {device}); use fp32")


def rank_batch(trainer: TrainerConfig, info: distributed.DistInfo) -> int:
    """This rank's share m = B / W of the global batch; ConfigError unless the W processes and then
    trainer.accumulate micro-batches divide it."""
    m_local = distributed.check_batch(trainer.batch_size, info)
    if m_local % trainer.accumulate:
        raise ConfigError(f"trainer.batch_size {trainer.batch_size} over {info.world_size} process(es) gives "
                          f"{m_local} examples each, not divisible by trainer.accumulate {trainer.accumulate}")
    return m_local


def emulated_precision(precision: str, device: torch.device, flags: set[str] | None = None) -> str | None:
    """A one-line warning when `precision` (resolved) runs emulated on `device`, with its expected
    cost: bf16 on a CPU without AVX512-BF16/AMX; None when it runs natively."""
    if precision == "bf16" and torch.device(device).type == "cpu" and not cpu_has_fast_bf16(flags):
        return (f"genmodels: warning: bf16 on this CPU is emulated (no AVX512-BF16/AMX): expect it to run about "
                f"{EMULATED_BF16_SLOWDOWN:g}x slower than fp32 (measured for sampling on an AVX2 CPU); "
                f"precision fp32 is faster here")
    return None


def check_machine(trainer: TrainerConfig, device: torch.device, info: distributed.DistInfo) -> None:
    """The trainer settings that depend on this machine and process group, checked before a run
    directory is created or its config.toml written: the precision (auto resolved) on `device`
    and the batch shared out over the ranks and micro-batches. A precision the CPU emulates and
    more threads than usable cores are warned about (one line each, on stderr)."""
    precision = resolve_precision(trainer.precision, device)[0]
    check_precision(precision, device)
    rank_batch(trainer, info)
    warnings = [emulated_precision(precision, device), threads_warning(trainer.threads, "trainer.threads")]
    for line in filter(None, warnings):
        if info.is_main:
            print(line, file=sys.stderr, flush=True)


def threads_warning(threads: int, flag: str) -> str | None:
    """A one-line warning when `threads` is more than this process may use (it is capped)."""
    cores = usable_cores()
    if threads > cores:
        return f"genmodels: warning: {flag} {threads} is more than the {cores} usable core(s); using {cores}"
    return None


def resolve_threads(threads: int, local_world_size: int = 1, cores: int | None = None) -> int:
    """Intra-op threads for one process: `threads` if positive (capped at the usable cores: more
    threads than cores only wait on each other), else the cores shared out among the
    `local_world_size` processes on this machine (at least 1)."""
    if threads > 0:
        return min(threads, cores or usable_cores())
    cores = cores or _physical_cores()
    return max(1, cores // max(1, local_world_size))


def usable_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (a container
    started with `--cpus N` sees every core of the host in its affinity but may use N)."""
    try:
        affinity = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 1
    quota = cgroup_cpus(cgroup_root)
    return min(affinity, quota) if quota else affinity


def cgroup_cpus(root: Path = CGROUP_ROOT) -> int | None:
    """The whole CPUs a cgroup CPU quota allows (at least 1), or None without a quota: cgroup v2's
    cpu.max ("QUOTA PERIOD", QUOTA "max" without one), else v1's cpu.cfs_quota_us / cpu.cfs_period_us
    (-1 without one). Unreadable or malformed files count as no quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        if quota in ("max", "-1") or int(period) <= 0:
            return None
        return max(1, int(quota) // int(period))
    except ValueError:
        return None


def _physical_cores() -> int:
    """Cores this process may use, capped by torch's own default thread count."""
    return max(1, min(usable_cores(), torch.get_num_threads()))
