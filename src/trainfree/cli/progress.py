"""The search's progress line: labelled columns, and a clock that moves while work goes on.

A rich progress bar estimates the time left from the speed at which its task completes; a
search that measures models for a minute completes nothing meanwhile, so that estimate
froze (a user watched "0:02:53" left for four minutes on a busy laptop). Here the time
spent and left are read from the clock at every refresh: for a wall-time budget the time
left is the budget less the time spent, for an evaluation budget the evaluations left at
the recent rate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.progress_bar import ProgressBar
from rich.text import Text


def process_started() -> float | None:
    """When this process started, on the ``time.monotonic()`` clock (Linux; else None): a
    search's wall-time budget counts its start-up, the imports included (4-6 s on a busy
    2-core machine)."""
    try:
        with open("/proc/self/stat") as fh:
            ticks = float(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    return time.monotonic() - age if 0 <= age < 600 else None


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class _Budget:
    """What the columns need to know: the budget and the time spent at the last report."""

    def __init__(self, evals: int | None, seconds: float | None) -> None:
        self.evals, self.seconds = evals, seconds
        self.spent, self.at, self.done, self.rate = 0.0, time.monotonic(), 0, 0.0

    def now_spent(self) -> float:
        return self.spent + time.monotonic() - self.at

    def fraction(self) -> float:
        if self.evals:
            return min(1.0, self.done / self.evals)
        return min(1.0, self.now_spent() / self.seconds) if self.seconds else 0.0

    def left(self) -> float | None:
        if self.seconds is not None:
            return max(0.0, self.seconds - self.now_spent())
        if self.evals and self.rate > 0:
            return max(0.0, (self.evals - self.done) / self.rate)
        return None


class _BarColumn(BarColumn):
    def __init__(self, budget: _Budget) -> None:
        super().__init__(bar_width=10)
        self.budget = budget

    def render(self, task: Task) -> ProgressBar:
        return ProgressBar(total=1000, completed=int(1000 * self.budget.fraction()), width=10)


class _TimeColumn(ProgressColumn):
    def __init__(self, budget: _Budget) -> None:
        super().__init__()
        self.budget = budget

    def render(self, task: Task) -> Text:
        left = self.budget.left()
        shown = "?" if left is None else _clock(left)
        return Text(f"{_clock(self.budget.now_spent())} spent, {shown} left", style="progress.remaining")


class SearchDisplay:
    """The progress line of one search and the lines it prints once (accuracy, a busy
    machine). ``on_progress`` is the run's progress callback."""

    def __init__(self, console: Console, run: Any) -> None:
        self.run, self.shown_accuracy = run, False
        self.budget = _Budget(run.budget.evaluations, run.budget.seconds)
        self.progress = Progress(
            TextColumn("[bold]{task.description:<8}"),
            _BarColumn(self.budget),
            TextColumn("{task.fields[status]}"),
            _TimeColumn(self.budget),
            console=console,
            refresh_per_second=2,  # the refresh thread competes with the timings: twice a second
        )
        self.task = self.progress.add_task("starting", total=None, status="")

    def __enter__(self) -> SearchDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def print(self, text: Any, style: str = "") -> None:
        self.progress.console.print(f"[{style}]{text}[/]" if style else text, highlight=False)

    def on_progress(self, p: Any, accuracy_table: Callable[[Any, str], Any]) -> None:
        run, model = self.run, self.run.cost_source.model
        if p.phase == "search" and model is not None and not self.shown_accuracy:
            self.shown_accuracy = True
            self.progress.console.print(
                accuracy_table(model.accuracy, f"cost model: held-out accuracy ({model.n} measured)")
            )
            self.print(f"cost model: {model.form()}")
            if run.cost_source.note:
                self.print(run.cost_source.note, "yellow")
        if p.notice:
            self.print(p.notice, "yellow")
        self.budget.spent, self.budget.at = p.elapsed, time.monotonic()
        self.budget.done, self.budget.rate = p.evaluations, p.evals_per_second
        label = {"search": f"gen {p.generation}", "calibration": "calibrate", "frontier": "measure"}.get(
            p.phase, p.phase
        )
        self.progress.update(
            self.task,
            description=label,
            status=f"{p.evaluations:,} evaluated, frontier {p.frontier_measured}/{p.frontier_size} measured,",
        )
