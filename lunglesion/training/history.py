"""Training history: a CSV log appended each epoch and a PNG of the curves."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class CsvHistory:
    """Append-only per-epoch log; on resume, rows after the resumed epoch are dropped."""

    def __init__(self, path: Path, resume_epoch: int | None = None) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []
        if resume_epoch is not None and self.path.exists():
            with self.path.open() as f:
                self.rows = [{k: float(v) for k, v in r.items() if v != ""}
                             for r in csv.DictReader(f) if int(float(r["epoch"])) <= resume_epoch]
        self._rewrite()

    def append(self, row: dict[str, float]) -> None:
        """Add one epoch's figures (must contain ``epoch``) and rewrite the file."""
        self.rows.append(dict(row))
        self._rewrite()

    def _rewrite(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys or ["epoch"])
            writer.writeheader()
            writer.writerows(self.rows)

    def plot(self, png: Path, title: str = "training curves") -> None:
        """Losses on the left axis, validation metrics (keys starting ``val_``) on the right."""
        if not self.rows:
            return
        epochs = [r["epoch"] for r in self.rows]
        fig, ax = plt.subplots(figsize=(7, 4))
        metric_ax = ax.twinx()
        for key in self.rows[-1]:
            if key == "epoch" or key == "lr":
                continue
            values = [r.get(key, float("nan")) for r in self.rows]
            target = metric_ax if key.startswith("val_") else ax
            target.plot(epochs, values, label=key, linestyle="--" if target is metric_ax else "-")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        metric_ax.set_ylabel("validation metric")
        lines = ax.get_legend_handles_labels()
        mlines = metric_ax.get_legend_handles_labels()
        ax.legend(lines[0] + mlines[0], lines[1] + mlines[1], fontsize=8, loc="center right")
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(png, dpi=100)
        plt.close(fig)
