"""Draw the two figures of the ming-videorope docs page.

1. Which position row (t, h, w) drives each rotary frequency, per layout (VideoRoPE gives time the lowest).
2. The (t, h, w) positions of a text + video + text sequence: the diagonal layout and the temporal spacing δ.

Run: python packages/ming-videorope/examples/plot_videorope.py --out docs/figures
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap

from ming_videorope import Modality, RotaryEmbedding, frequency_axes, get_position_ids

AXIS_COLOURS = ["#d62728", "#1f77b4", "#2ca02c"]  # t, h, w


def plot_frequency_allocation(path: Path, rotary_dim: int = 64, theta: float = 600000.0) -> None:
    layouts = ["videorope", "mrope", "mrope_interleaved", "rope1d"]
    n = rotary_dim // 2
    grid = torch.stack([frequency_axes(layout, n) for layout in layouts]).numpy()
    inv_freq = RotaryEmbedding(rotary_dim, theta=theta).inv_freq
    fig, (ax_top, ax) = plt.subplots(2, 1, figsize=(9, 4.2), height_ratios=[1, 2.2], sharex=True)
    ax_top.semilogy(range(n), inv_freq.numpy(), "k.-")
    ax_top.set_ylabel("frequency\n(rad / position)")
    ax_top.set_title(f"Rotary frequency allocation ({rotary_dim} rotated dims, θ = {theta:g})")
    ax.imshow(grid, aspect="auto", cmap=ListedColormap(AXIS_COLOURS), vmin=0, vmax=2, interpolation="nearest")
    ax.set_yticks(range(len(layouts)), layouts)
    ax.set_xlabel("frequency index (0 = highest frequency)")
    for axis, name in enumerate("thw"):
        ax.plot([], [], "s", color=AXIS_COLOURS[axis], label=name)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_positions(path: Path, spacing: float = 2.0) -> None:
    grid = (4, 3, 4)
    ids = [Modality.TEXT] * 5 + [Modality.VIDEO] * (grid[0] * grid[1] * grid[2]) + [Modality.TEXT] * 4
    positions = get_position_ids(
        torch.tensor([ids]), video_grid_thw=torch.tensor([grid]), temporal_spacing=spacing
    ).position_ids[:, 0]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for axis, name in enumerate("thw"):
        ax.plot(positions[axis].numpy(), ".-" if axis == 0 else ".", color=AXIS_COLOURS[axis], label=name, ms=5)
    video = [i for i, m in enumerate(ids) if m == Modality.VIDEO]
    ax.axvspan(video[0] - 0.5, video[-1] + 0.5, color="0.92", zorder=0, label="video tokens")
    ax.set_xlabel("token index")
    ax.set_ylabel("position id")
    ax.set_title(f"VideoRoPE positions: 5 text, video T×H×W = {grid[0]}×{grid[1]}×{grid[2]} (δ = {spacing:g}), 4 text")
    ax.legend(ncol=4, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default: a temporary folder)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="videorope-figures-"))
    out.mkdir(parents=True, exist_ok=True)
    plot_frequency_allocation(out / "videorope_frequency_allocation.png")
    plot_positions(out / "videorope_positions.png")
    print(f"wrote {out / 'videorope_frequency_allocation.png'} and {out / 'videorope_positions.png'}")


if __name__ == "__main__":
    main()
