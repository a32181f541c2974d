"""Was the machine busy while a run measured? Read from the measurements themselves.

Each fresh measurement says how many other programs were running while it was timed, which
share of its runs another program interrupted, whether its runs agreed, and how fast a fixed
reference kernel ran (:mod:`trainfree.hardware.timing`). Over a run's fresh measurements that
tells whether the figures are of a busy machine, which the search says once and records in
its files. The load average is no help here: a search's own proxy workers keep it near the
number of cores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: busy: other programs kept this many CPUs busy on average while models were timed, or this
#: share of timed runs was interrupted, or the reference kernel ran this much slower than its
#: best in the run
BUSY_OTHERS, BUSY_INTERRUPTED, BUSY_REFERENCE = 0.75, 0.25, 1.15
#: not repeatable: this share of measurements still disagreed by more than 10% at their last run
UNREPEATABLE_SHARE = 0.5
#: the fewest fresh measurements a verdict needs (each is several timed runs already)
MIN_MEASUREMENTS = 1


def under_load(record: dict[str, Any]) -> bool:
    """Whether one measurement was taken under load (interrupted, or its runs disagreed)."""
    share = _num(record.get("interrupted_share"))
    return (math.isfinite(share) and share >= 0.5) or record.get("repeatable") is False


@dataclass(frozen=True)
class MachineLoad:
    """What the fresh measurements of a run say about the machine (NaN: not known)."""

    measurements: int
    others_running: float  # other programs running while models were timed (mean of medians)
    interrupted_share: float  # share of timed runs another program interrupted
    reference_slowdown: float  # the reference kernel's median time over its fastest
    unrepeatable_share: float  # share of measurements whose runs still disagreed by > 10%
    under_load: int  # measurements taken under load (``under_load``)

    @classmethod
    def of(cls, records: Sequence[dict[str, Any]]) -> MachineLoad:
        """Over the fresh (not cached) successful measurements among ``records``."""
        fresh = [r for r in records if r.get("measured") and not r.get("hardware_cached")]
        col = {k: np.array([_num(r.get(k)) for r in fresh]) for k in ("others_running", "interrupted_share")}
        ref = np.array([_num(r.get("reference_ms")) for r in fresh])
        ref = ref[np.isfinite(ref) & (ref > 0)]
        return cls(
            measurements=len(fresh),
            others_running=_mean(col["others_running"]),
            interrupted_share=_mean(col["interrupted_share"]),
            reference_slowdown=float(np.median(ref) / ref.min()) if len(ref) else math.nan,
            unrepeatable_share=float(np.mean([r.get("repeatable") is False for r in fresh]))
            if fresh
            else math.nan,
            under_load=sum(under_load(r) for r in fresh),
        )

    @property
    def busy(self) -> bool:
        if self.measurements < MIN_MEASUREMENTS:
            return False
        return (
            _at_least(self.others_running, BUSY_OTHERS)
            or _at_least(self.interrupted_share, BUSY_INTERRUPTED)
            or _at_least(self.reference_slowdown, BUSY_REFERENCE)
            or not self.repeatable
        )

    @property
    def repeatable(self) -> bool:
        return not _at_least(self.unrepeatable_share, UNREPEATABLE_SHARE)

    def describe(self, clock: str = "cpu") -> str:
        """One line: what was seen, what was done about it, what it means for the figures
        (``clock``: the measurements' ``HardwareSettings.clock``)."""
        seen = []
        if math.isfinite(self.others_running):
            seen.append(f"other programs kept {self.others_running:.1f} CPUs busy")
        if math.isfinite(self.interrupted_share):
            seen.append(f"interrupted {100 * self.interrupted_share:.0f}% of timed runs")
        if _at_least(self.reference_slowdown, BUSY_REFERENCE):
            seen.append(f"a reference kernel ran {self.reference_slowdown:.2f}x slower")
        what = "; ".join(seen) or "timings disagreed"
        if not self.repeatable:
            return (
                f"timings on this machine are not repeatable ({what}; "
                f"{100 * self.unrepeatable_share:.0f}% of models still varied by over 10%): "
                "the frontier is measured under load and may reorder on a quiet machine"
            )
        timed = "on-CPU times, repeated" if clock == "cpu" else "wall times, repeated"
        return (
            f"this machine is busy ({what}): latencies are {timed} until they agreed; "
            "figures are of a busy machine (frontier.json: machine_load)"
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }
        out.update(busy=self.busy, repeatable=self.repeatable)
        return out


def _num(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return math.nan
    return float(x)


def _mean(values: np.ndarray) -> float:
    ok = values[np.isfinite(values)]
    return float(ok.mean()) if len(ok) else math.nan


def _at_least(value: float, bar: float) -> bool:
    return math.isfinite(value) and value >= bar
