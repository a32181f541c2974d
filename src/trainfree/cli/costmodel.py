"""How a cost model's held-out accuracy is printed: by ``calibrate``, and by ``search`` once
its model is fitted."""

from __future__ import annotations

from rich import box
from rich.table import Table


def accuracy_table(acc: dict[str, dict[str, float]], title: str) -> Table:
    """The held-out accuracy of each cost the model predicts (its components left out)."""
    from trainfree.search.costs import MEASURED_FIELDS

    table = Table(title=title, box=box.SIMPLE_HEAD)
    for col in ("cost", "n", "Spearman", "median |err|", "within 10%", "pairs ordered"):
        table.add_column(col, justify="left" if col == "cost" else "right")
    for name, a in acc.items():
        if name not in MEASURED_FIELDS:  # a component (the activation peak): predictor.json has it
            continue
        if name == "latency_ms" and "decode_ms_per_token" in acc:  # generation: the same figure
            continue
        ordered = a.get("pairs_ordered")  # older predictor files have none
        table.add_row(
            name,
            str(a["n"]),
            f"{a['spearman']:.3f}",
            f"{100 * a['median_ape']:.1f}%",
            f"{100 * a['within_10pct']:.0f}%",
            "-" if ordered is None or ordered != ordered else f"{100 * ordered:.0f}%",
        )
    return table
