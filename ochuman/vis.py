"""Figures (matplotlib, imported lazily; no torch): precision/recall per subset and AP vs MaxIoU."""
from __future__ import annotations

import os
from typing import Union


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_report(report, path: Union[str, os.PathLike]) -> None:
    """Precision/recall curves (IoU 0.5, 0.75 and the mean over 0.5:0.95) per subset and results
    file; with AP-vs-MaxIoU data, a second panel of AP per MaxIoU bin. Written atomically."""
    from ochuman.io import atomic_write

    plt = _pyplot()
    curves = report.curves()
    bins = report.ap_by_max_iou()
    subsets = list(dict.fromkeys(subset for _, subset in curves))
    columns = len(subsets) + (1 if bins else 0)
    fig, axes = plt.subplots(1, columns, figsize=(4.2 * columns, 4), squeeze=False)
    for ax, subset in zip(axes[0], subsets):
        for (name, s), (recall, precision) in curves.items():
            if s != subset:
                continue
            mean = precision.clip(min=0).mean(axis=0)
            line, = ax.plot(recall, mean, label=f"{name} (mean .5:.95)")
            ax.plot(recall, precision[0].clip(min=0), ls="--", color=line.get_color(), alpha=0.7, label=f"{name} @.5")
            ax.plot(recall, precision[5].clip(min=0), ls=":", color=line.get_color(), alpha=0.7, label=f"{name} @.75")
        ax.set(title=f"{subset} ({report.iou_type}, {report.mode})", xlabel="recall", ylabel="precision",
               xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower left")
    if bins:
        ax = axes[0][-1]
        for name in dict.fromkeys(row["results"] for row in bins):
            rows = [r for r in bins if r["results"] == name and r["AP"] >= 0]
            ax.plot([(r["max_iou_lo"] + r["max_iou_hi"]) / 2 for r in rows], [r["AP"] for r in rows], marker="o", label=name)
        ax.axvspan(0.5, 0.75, color="tab:orange", alpha=0.08, label="moderate")
        ax.axvspan(0.75, 1.0, color="tab:red", alpha=0.08, label="hard")
        ax.set(title="AP vs MaxIoU", xlabel="MaxIoU", ylabel="AP", xlim=(0.5, 1.0), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format=suffix, dpi=120)
    plt.close(fig)
