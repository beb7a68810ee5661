"""TensorBoard logging of a run (train.tensorboard=true): scalars, sample grids, alerts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError


class TensorBoardLog:
    """Scalars, sample grids and alerts for TensorBoard, in RUN/tensorboard (x axis: step)."""

    def __init__(self, writer):
        self.writer = writer

    def scalars(self, row: dict) -> None:
        for key, value in row.items():
            if key not in ("step",) and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, row["step"])

    def image(self, png: Path, step: int) -> None:
        from PIL import Image

        pixels = np.asarray(Image.open(png).convert("RGB"))
        self.writer.add_image("samples", pixels, step, dataformats="HWC")

    def text(self, alert) -> None:
        self.writer.add_text(f"alerts/{alert.kind}", alert.text(), alert.step)

    def close(self) -> None:
        self.writer.close()


def open_tensorboard(run_dir: Path) -> TensorBoardLog:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GanforgeError("train.tensorboard=true needs the tensorboard package; install it with "
                            "pip install 'ganforge[tensorboard]' or set train.tensorboard=false") from None
    return TensorBoardLog(SummaryWriter(str(Path(run_dir) / "tensorboard")))
