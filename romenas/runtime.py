"""How a network runs: numeric precision and memory format (train's ``--compile`` wraps the result).

``--precision`` takes Lightning's names: ``32`` (float32), ``bf16-mixed`` (autocast to
bfloat16, no scaling needed) and ``16-mixed`` (autocast to float16 with a gradient scaler
per optimiser, so small gradients do not underflow). All three run on CPU too, which is
where the tests check them. ``--channels-last`` stores activations NHWC (faster
convolutions on tensor cores and recent CPUs).
"""
from __future__ import annotations

import contextlib
from typing import Iterable

import torch
from torch import nn

_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


class Runtime:
    def __init__(self, device: torch.device, precision: str = "32", channels_last: bool = False):
        self.device, self.precision, self.channels_last = device, precision, channels_last
        self.dtype = _DTYPES.get(precision)
        self.scalers: dict[str, torch.amp.GradScaler] = {}

    def prepare(self, net: nn.Module) -> nn.Module:
        net = net.to(self.device)
        return net.to(memory_format=torch.channels_last) if self.channels_last else net

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self, name: str) -> torch.amp.GradScaler | None:
        """The gradient scaler of one optimiser (16-mixed only)."""
        if self.precision != "16-mixed":
            return None
        if name not in self.scalers:
            self.scalers[name] = torch.amp.GradScaler(self.device.type)
        return self.scalers[name]

    def backward(self, loss: torch.Tensor, name: str) -> None:
        scaler = self.scaler(name)
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, name: str, clip: Iterable[torch.Tensor] = (),
             max_norm: float = 0.0) -> None:
        """Unscale (16-mixed), clip to ``max_norm`` when positive, step; a scaled step with inf/NaN
        gradients is skipped and the scale lowered, as GradScaler does."""
        scaler = self.scaler(name)
        if scaler is not None:
            scaler.unscale_(optimizer)
        if max_norm > 0:
            nn.utils.clip_grad_norm_(list(clip), max_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict:
        return {name: s.state_dict() for name, s in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, s in (state or {}).items():
            self.scaler(name).load_state_dict(s)
