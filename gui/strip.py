"""The scrolling spectrogram strip under the video: dB columns in, an RGB picture out (numpy)."""

from __future__ import annotations

import numpy as np

from fnac.overlay import colorize


class SpectrogramStrip:
    """The newest ``width`` spectrum columns, oldest on the left, low frequencies at the bottom."""

    def __init__(self, width: int = 200, floor_db: float = -100.0, ceiling_db: float = 0.0) -> None:
        self.width, self.floor_db, self.ceiling_db = width, floor_db, ceiling_db
        self.columns: np.ndarray | None = None  # (F, width) dB

    def push(self, column: np.ndarray) -> None:
        column = np.asarray(column, np.float32).ravel()
        if self.columns is None or self.columns.shape[0] != column.size:
            self.columns = np.full((column.size, self.width), self.floor_db, np.float32)
        self.columns = np.roll(self.columns, -1, axis=1)
        self.columns[:, -1] = column

    def image(self, colormap: str = "inferno") -> np.ndarray:
        """(F, width, 3) uint8 RGB; black until the first column."""
        if self.columns is None:
            return np.zeros((1, self.width, 3), np.uint8)
        span = self.ceiling_db - self.floor_db
        scaled = np.clip((self.columns - self.floor_db) / span, 0.0, 1.0)
        return np.ascontiguousarray(colorize(scaled[::-1], colormap))
