"""Peak dense FLOP/s per GPU variant and precision: the denominator of MFU.

Why keyed by both: an fp32 run measured against the bf16 tensor-core peak reads ~15x too low on an H100,
and the H100's PCIe and NVL parts are 24% and 16% slower than the SXM one whose name ("H100 80GB HBM3")
shares the "H100". Figures are NVIDIA's datasheet numbers without sparsity (the datasheets print the
2:4-sparse figure, twice these, for tensor cores). fp32 matmuls run on tensor cores only when TF32 is
allowed (``torch.backends.cuda.matmul.allow_tf32``), hence a tf32 column beside plain fp32.
"""

from __future__ import annotations

import re
from typing import Any

# variant -> precision -> dense FLOP/s
PEAKS: dict[str, dict[str, float]] = {
    "H100 SXM": {"bf16": 989e12, "fp16": 989e12, "tf32": 494.5e12, "fp32": 67e12},
    "H100 PCIe": {"bf16": 756e12, "fp16": 756e12, "tf32": 378e12, "fp32": 51e12},
    "H100 NVL": {"bf16": 835e12, "fp16": 835e12, "tf32": 417.5e12, "fp32": 60e12},
    "H200": {"bf16": 989e12, "fp16": 989e12, "tf32": 494.5e12, "fp32": 67e12},
    "H200 NVL": {"bf16": 835e12, "fp16": 835e12, "tf32": 417.5e12, "fp32": 60e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12},
    "L40S": {"bf16": 362e12, "fp16": 362e12, "tf32": 183e12, "fp32": 91.6e12},
    "A10": {"bf16": 125e12, "fp16": 125e12, "tf32": 62.5e12, "fp32": 31.2e12},
    # GeForce: bf16/fp16 with fp32 accumulation (what training uses) runs at half the fp16-accumulate rate
    "RTX 4090": {"bf16": 165.2e12, "fp16": 165.2e12, "tf32": 82.6e12, "fp32": 82.6e12},
}

# torch.cuda.get_device_name() -> variant; first match wins, so the NVL/PCIe parts come before the bare name.
# A bare "NVIDIA H100" (no form factor) stays unknown rather than guessed.
VARIANTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bH100\b.*\bNVL\b", re.I), "H100 NVL"),
    (re.compile(r"\bH100\b.*\bPCIe\b", re.I), "H100 PCIe"),
    (re.compile(r"\bH100\b.*\b(SXM\d?|HBM3)\b", re.I), "H100 SXM"),
    (re.compile(r"\bH200\b.*\bNVL\b", re.I), "H200 NVL"),
    (re.compile(r"\bH200\b", re.I), "H200"),
    (re.compile(r"\bA100\b", re.I), "A100"),
    (re.compile(r"\bL40S\b", re.I), "L40S"),
    (re.compile(r"\bA10\b", re.I), "A10"),
    (re.compile(r"\bRTX 4090\b", re.I), "RTX 4090"),
]


def gpu_variant(name: str) -> str | None:
    """The ``PEAKS`` key of a device name as torch reports it, or None when the part is not in the table.

    >>> gpu_variant("NVIDIA H100 80GB HBM3"), gpu_variant("NVIDIA H100 PCIe"), gpu_variant("NVIDIA A10G")
    ('H100 SXM', 'H100 PCIe', None)
    """
    return next((variant for pattern, variant in VARIANTS if pattern.search(name)), None)


def math_precision(precision: str, *, tf32: bool) -> str:
    """The ``PEAKS`` column a run's matmuls use: fp32 runs use tensor cores only with TF32 allowed."""
    if precision == "fp32":
        return "tf32" if tf32 else "fp32"
    return precision


def table_peak(name: str, precision: str, *, tf32: bool = False) -> tuple[float, str]:
    """(peak FLOP/s, source) for a device name and the run's precision; (0, reason) when unknown."""
    variant = gpu_variant(name)
    if variant is None:
        return 0.0, f"{name}: peak unknown, set metrics.peak_flops for MFU"
    column = math_precision(precision, tf32=tf32)
    return PEAKS[variant][column], f"{name}: {variant} {column} dense peak"


def peak_flops(cfg: Any, device: Any) -> tuple[float, str]:
    """The device's peak FLOP/s for MFU and where it comes from; 0 when it is not known.

    MFU against a guessed peak is a number that looks precise and is not (a CPU's depends on its vector
    units, clock and threads), so without a configured or table value no MFU is reported at all.
    """
    import torch

    if cfg.metrics.peak_flops > 0:
        return cfg.metrics.peak_flops, "config"
    if device.type == "cuda":
        tf32 = bool(torch.backends.cuda.matmul.allow_tf32)
        return table_peak(torch.cuda.get_device_name(device), cfg.train.precision, tf32=tf32)
    return 0.0, f"{device.type}: peak unknown, set metrics.peak_flops for MFU"
