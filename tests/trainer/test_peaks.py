"""MFU's denominator: the peak of the GPU variant (SXM, PCIe, NVL) at the run's precision, TF32 only when on."""

from types import SimpleNamespace

import pytest
import torch

from trainer.peaks import gpu_variant, peak_flops, table_peak

# (torch.cuda.get_device_name(), precision, tf32 allowed) -> dense peak
CASES = [
    ("NVIDIA H100 80GB HBM3", "bf16", False, 989e12),
    ("NVIDIA H100 80GB HBM3", "fp16", False, 989e12),
    ("NVIDIA H100 80GB HBM3", "fp32", False, 67e12),
    ("NVIDIA H100 80GB HBM3", "fp32", True, 494.5e12),
    ("NVIDIA H100 PCIe", "bf16", False, 756e12),
    ("NVIDIA H100 PCIe", "fp32", False, 51e12),
    ("NVIDIA H100 NVL", "bf16", False, 835e12),
    ("NVIDIA H100 NVL", "fp32", False, 60e12),
    ("NVIDIA H200", "bf16", False, 989e12),
    ("NVIDIA H200", "fp32", False, 67e12),
    ("NVIDIA H200 NVL", "bf16", False, 835e12),
    ("NVIDIA A100-SXM4-80GB", "bf16", False, 312e12),
    ("NVIDIA A100 80GB PCIe", "fp32", False, 19.5e12),
    ("NVIDIA A100-SXM4-40GB", "fp32", True, 156e12),
    ("NVIDIA L40S", "bf16", False, 362e12),
    ("NVIDIA L40S", "fp32", False, 91.6e12),
    ("NVIDIA A10", "bf16", False, 125e12),
    ("NVIDIA A10", "fp32", False, 31.2e12),
    ("NVIDIA GeForce RTX 4090", "bf16", False, 165.2e12),
    ("NVIDIA GeForce RTX 4090", "fp32", False, 82.6e12),
]


@pytest.mark.parametrize("name, precision, tf32, peak", CASES)
def test_peak_by_variant_and_precision(name, precision, tf32, peak):
    got, source = table_peak(name, precision, tf32=tf32)
    assert got == peak
    assert source.startswith(name) and gpu_variant(name) in source


@pytest.mark.parametrize(
    "name", ["NVIDIA H100", "NVIDIA A10G", "NVIDIA GH200 480GB", "NVIDIA L40", "Tesla T4", "NVIDIA B200"]
)
def test_unknown_variants_report_no_mfu(name):
    peak, source = table_peak(name, "bf16")
    assert peak == 0.0 and "peak unknown" in source and "metrics.peak_flops" in source


def test_fp32_uses_tf32_column_only_when_torch_allows_it(monkeypatch):
    cfg = SimpleNamespace(metrics=SimpleNamespace(peak_flops=0.0), train=SimpleNamespace(precision="fp32"))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
    cuda = torch.device("cuda")
    before = torch.backends.cuda.matmul.allow_tf32  # a property of torch's: monkeypatch cannot restore it
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        assert peak_flops(cfg, cuda) == (51e12, "NVIDIA H100 PCIe: H100 PCIe fp32 dense peak")
        torch.backends.cuda.matmul.allow_tf32 = True
        assert peak_flops(cfg, cuda)[0] == 378e12
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    cfg.train.precision = "bf16"
    assert peak_flops(cfg, cuda)[0] == 756e12
    cfg.metrics.peak_flops = 1e12
    assert peak_flops(cfg, cuda) == (1e12, "config")
    cfg.metrics.peak_flops = 0.0
    assert peak_flops(cfg, torch.device("cpu")) == (0.0, "cpu: peak unknown, set metrics.peak_flops for MFU")
