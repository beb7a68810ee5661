"""What precision the training step computes in: train.precision, unless bf16 cannot pay on the device."""

from __future__ import annotations

import torch


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast can pay on ``device``: on CUDA always; on a CPU only where oneDNN has
    bf16 kernels (AVX-512 or AMX). Elsewhere bf16 is emulated: on an AVX2-only EPYC a
    (256 x 784) @ (784 x 512) matmul took 210 ms in bf16 against 2.6 ms in fp32, and a 4x4
    convolution from 64 to 128 channels on 14 x 14 maps 480 ms against 16."""
    if device.type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN's query: judge by the vector unit
        return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def step_precision(asked: str, device: torch.device, log) -> str:
    """``asked`` (train.precision), or fp32 where bf16 would be emulated; says so once through ``log``."""
    if asked == "bf16" and not bf16_is_fast(device):
        log("train.precision=bf16, but this CPU has no bf16 arithmetic (no AVX-512 or AMX), where bf16 runs "
            "30-80x slower than fp32: training in fp32")
        return "fp32"
    return asked
