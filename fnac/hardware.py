"""What the machine's processor can do, for choosing precisions, and a description of the machine
for benchmark reports (figures from different machines are not comparable)."""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path
from typing import Any


@cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpu_flags() -> set[str]:
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


@cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere bf16
    is emulated and slower than float32."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def processor() -> dict[str, str]:
    """What tells processors apart when their name does not (a cloud's "AMD EPYC" is several
    generations): the name, family, model and stepping, and a digest of the instruction flags."""
    import hashlib

    fields = {}
    for line in _cpuinfo().splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name in ("cpu family", "model", "stepping") and name not in fields:
            fields[name] = value.strip()
    flags = " ".join(sorted(_cpu_flags()))
    return {
        "cpu": cpu_name(),
        "family": fields.get("cpu family", ""),
        "model": fields.get("model", ""),
        "stepping": fields.get("stepping", ""),
        "flags": hashlib.sha256(flags.encode()).hexdigest()[:12],
    }


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_name() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The processor, its cores and the instructions the fast backends use (int8 dot products,
    native bf16), torch's version and its CPU kernels, and the GPU when there is one."""
    import torch

    flags = _cpu_flags()
    return {
        "cpu": cpu_name(),
        "cores": usable_cores(),
        "int8_dot_product": sorted({"avx512_vnni", "avx_vnni", "amx_int8"} & flags),
        "native_bf16": cpu_has_native_bf16(),
        "torch": torch.__version__,
        "torch_cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def describe(m: dict[str, Any]) -> str:
    """One line: ``AMD EPYC, 2 cores, AVX512 kernels, int8 dot products (avx512_vnni), native bf16,
    torch 2.11.0``."""
    parts = [m["cpu"], f"{m['cores']} cores", f"{m['torch_cpu_kernels']} kernels"]
    if m["int8_dot_product"]:
        parts.append(f"int8 dot products ({', '.join(m['int8_dot_product'])})")
    if m["native_bf16"]:
        parts.append("native bf16")
    parts.append(f"torch {m['torch']}")
    if m["gpu"]:
        parts.append(m["gpu"])
    return ", ".join(parts)
