"""Cross-attention heatmaps (PNG) and a compact text view of them.

Source subword tokens run along the x axis, generated target tokens down the y
axis; a cell is how much the decoder attended to that source token while it
produced that target token. Plots are drawn on a bare Agg canvas (no pyplot),
so nothing needs a display and no global figure state leaks between calls.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from rosettamt.atomic import atomic_open

MAX_INCHES = 30.0  # very long sentences get smaller fonts, not ever larger images


def select_heads(weights: np.ndarray, head: Optional[int] = None) -> np.ndarray:
    """(H, T, S) -> (T, S): one head, or the mean over heads (rows still sum to 1)."""
    if weights.ndim != 3:
        raise ValueError(f"expected weights (H, T_tgt, T_src), got shape {weights.shape}")
    if head is None:
        return weights.mean(axis=0)  # (H, T, S) -> (T, S)
    n_heads = weights.shape[0]
    if not -n_heads <= head < n_heads:
        raise IndexError(f"head {head} out of range for {n_heads} heads")
    return weights[head]  # (T, S)


def next_plot_path(directory: Path, suffix: str = ".png") -> Path:
    """directory/NNN.png numbered after the highest existing one, so no plot is overwritten."""
    directory.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in directory.iterdir() if (m := re.fullmatch(r"(\d+)" + re.escape(suffix), p.name))]
    return directory / f"{max(numbers, default=0) + 1:03d}{suffix}"


def _draw(ax, matrix: np.ndarray, src: Sequence[str], tgt: Sequence[str], fontsize: float,
          xlabels: bool = True, ylabels: bool = True):
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=max(float(matrix.max()), 1e-6),
                      aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(src)))
    ax.set_yticks(range(len(tgt)))
    ax.set_xticklabels(src if xlabels else [], rotation=90, fontsize=fontsize)
    ax.set_yticklabels(tgt if ylabels else [], fontsize=fontsize)
    ax.tick_params(length=0)
    return image


def plot_attention(
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    weights: np.ndarray,
    path: Path,
    head: Optional[int] = None,
    grid: bool = False,
    title: str = "",
    dpi: int = 100,
) -> Path:
    """Save a heatmap of ``weights`` (H, T_tgt, T_src) as a PNG at ``path``.

    head=None: the mean over heads; head=h: that head; grid=True: one panel per head.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_heads, T, S = weights.shape
    if (T, S) != (len(tgt_tokens), len(src_tokens)):
        raise ValueError(f"weights {weights.shape} do not match {len(tgt_tokens)} x {len(src_tokens)} tokens")
    cell = 0.32  # inches per token
    panel_w, panel_h = 1.5 + cell * S, 1.0 + cell * T
    rows, cols = (math.ceil(n_heads / math.ceil(math.sqrt(n_heads))), math.ceil(math.sqrt(n_heads))) if grid else (1, 1)
    width, height = panel_w * cols + 1.0, panel_h * rows + 0.8
    shrink = min(1.0, MAX_INCHES / max(width, height))
    fontsize = max(3.0, 9.0 * shrink)
    fig = Figure(figsize=(max(width * shrink, 3.0), max(height * shrink, 2.5)), dpi=dpi)
    FigureCanvasAgg(fig)

    with warnings.catch_warnings():  # scripts the bundled font lacks: boxes, not warnings
        warnings.simplefilter("ignore")
        mpl_log = logging.getLogger("matplotlib")
        level = mpl_log.level
        mpl_log.setLevel(logging.ERROR)
        try:
            if grid:
                axes = fig.subplots(rows, cols, squeeze=False)
                for h, ax in enumerate(axes.flat):
                    if h >= n_heads:
                        ax.axis("off")
                        continue
                    r, c = divmod(h, cols)
                    _draw(ax, weights[h], src_tokens, tgt_tokens, fontsize,
                          xlabels=r == rows - 1 or h + cols >= n_heads, ylabels=c == 0)
                    ax.set_title(f"head {h}", fontsize=fontsize + 1)
            else:
                ax = fig.subplots()
                image = _draw(ax, select_heads(weights, head), src_tokens, tgt_tokens, fontsize)
                fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
                ax.set_xlabel("source", fontsize=fontsize + 1)
                ax.set_ylabel("generated target", fontsize=fontsize + 1)
            if title:
                fig.suptitle(title, fontsize=fontsize + 2)
            fig.tight_layout()
            path = Path(path)
            with atomic_open(path) as f:  # a stopped run leaves no half-written PNG
                fig.savefig(f, format="png")
        finally:
            mpl_log.setLevel(level)
    return path


def strongest_source(weights2d: np.ndarray) -> List[tuple]:
    """For each target row of (T, S): (source index, weight) of the largest weight."""
    best = weights2d.argmax(axis=1)  # (T,)
    return [(int(j), float(weights2d[t, j])) for t, j in enumerate(best)]


def text_view(src_tokens: Sequence[str], tgt_tokens: Sequence[str], weights2d: np.ndarray) -> str:
    """One line per target token: ``target  -> source token it attended to most (weight)``."""
    width = max((len(t) for t in tgt_tokens), default=0)
    lines = []
    for tok, (j, w) in zip(tgt_tokens, strongest_source(weights2d)):
        lines.append(f"  {tok:<{width}}  -> {src_tokens[j]} ({w:.2f})")
    return "\n".join(lines)
