"""What a search run was asked to do, saved as ``settings.json`` in its run directory.

Everything is validated before anything is written (a bad value never leaves a settings file
that makes the folder unusable), and a settings file read back goes through the same checks,
so a hand-edited ``"pop_size": "12"`` is one clear error, not a traceback.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from trainfree.errors import ConfigError
from trainfree.hardware import HardwareSettings
from trainfree.proxies import list_proxies
from trainfree.proxies.balance import parse_alpha
from trainfree.registry import suggest
from trainfree.search.algorithms import ALGORITHMS
from trainfree.search.objectives import (
    GENERATION,
    OBJECTIVES,
    check_limits,
    check_objectives,
    needs_generation,
)
from trainfree.spaces import get_space, list_spaces

#: how a search measures: the peak-memory run is a full cold forward pass and serves as the
#: warm-up, and three timed runs give a median whose spread (interquartile range: median
#: 1.1% of the latency over 91 models of a main job) is far inside the cost model's +-10%;
#: measuring is where a search's time goes, so more runs would buy noise reduction nobody
#: needs at the price of fewer architectures (docs/search.md)
#: the search times each model 3 times, and up to 9 while the runs disagree (a busy machine),
#: after one untimed run: the first run after the memory run grows the heap anew (the steady
#: allocator maps nothing), and was the slowest of the runs in 9 of 12 models. Measured on 12
#: GPT-2 models, twice each: without it 4.7 timed runs a model and 4.4% between the two
#: measurements (median; 10.1% at the 90th percentile), with it 3.6 runs and 2.1% (6.4%), in
#: the same time per measurement (docs/search.md, "A busy machine")
SEARCH_HARDWARE = HardwareSettings(warmup=1, repeats=3, max_repeats=9)
#: the most timed runs a search takes, as a multiple of ``repeats``
MAX_REPEATS_FACTOR = 3
COSTS = ("predicted", "measured")
#: fields of older settings files, mapped onto ``limits``
_OLD_LIMITS = {"max_latency_ms": "latency", "max_memory_mb": "memory", "max_params": "params"}


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """``"200"`` -> 200 evaluations; ``"90s"``, ``"10m"``, ``"1.5h"`` -> seconds of wall time."""
    t = str(text).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)", t)
    if m:
        seconds = float(m.group(1)) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
        if seconds <= 0:
            raise ConfigError("budget", text, "a positive duration")
        return None, seconds
    m = re.fullmatch(r"(\d+)\s*(evals?|evaluations?)?", t)
    if m and int(m.group(1)) > 0:
        return int(m.group(1)), None
    raise ConfigError("budget", text, "a number of evaluations (e.g. 200) or a wall time (e.g. 90s, 10m, 1h)")


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, value, f"an integer >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, value, f"an integer <= {maximum}")


@dataclass
class SearchSettings:
    """Everything a run needs. ``pop_size`` None: sized to the budget once the cost of one
    evaluation is known (see ``SearchRun``); ``limits``: ``{objective: maximum}``."""

    space: str
    space_values: dict[str, list[Any]] = field(default_factory=dict)
    proxy: str = "zerolm"
    alpha: str = "heuristic"
    objectives: list[str] = field(default_factory=lambda: ["latency", "memory"])
    hardware: HardwareSettings = SEARCH_HARDWARE
    limits: dict[str, float] = field(default_factory=dict)
    costs: str = "predicted"
    calibration: int | None = None  # models measured to calibrate the cost model (None: by budget)
    budget: str = "4m"
    pop_size: int | None = None
    seed: int = 0
    workers: int = 2
    algorithm: str = "nsga2"
    use_cache: bool = True
    #: measured costs closer than this fraction do not tell models apart on the frontier
    #: (see ``pareto.frontier_rows``; 0: the exact frontier)
    resolution: float = 0.05

    def validate(self) -> None:
        if not isinstance(self.space, str) or self.space not in list_spaces():
            raise ConfigError("space", self.space, f"a registered space ({', '.join(list_spaces())})")
        if self.proxy not in list_proxies():
            hint = suggest(self.proxy, list_proxies())
            hint = f" ({hint})" if hint else ""
            raise ConfigError("proxy", self.proxy, f"a registered proxy{hint}: {', '.join(list_proxies())}")
        if not isinstance(self.objectives, list) or not all(isinstance(o, str) for o in self.objectives):
            raise ConfigError("objectives", self.objectives, f"a list of names from {list(OBJECTIVES)}")
        check_objectives(self.objectives)
        self.limits = check_limits(self.limits)
        try:
            strategy = parse_alpha(str(self.alpha))
        except ValueError:
            raise ConfigError("alpha", self.alpha, "'heuristic' or a number in [0, 1]") from None
        if strategy.kind == "fit":
            raise ConfigError("alpha", self.alpha, "'heuristic' or a number in [0, 1] (fit:K needs labels)")
        parse_budget(self.budget)
        if not isinstance(self.algorithm, str) or self.algorithm not in ALGORITHMS:
            hint = suggest(str(self.algorithm), ALGORITHMS.names())
            expected = f"one of {ALGORITHMS.names()}{f' ({hint})' if hint else ''}"
            raise ConfigError("algorithm", self.algorithm, expected)
        if self.costs not in COSTS:
            raise ConfigError("costs", self.costs, f"one of {list(COSTS)}")
        if self.calibration is not None:
            _check_int("calibration", self.calibration, 12, 10_000)
        if self.pop_size is not None:
            _check_int("pop_size", self.pop_size, 4, 10_000)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        _check_int("workers", self.workers, 1, 256)
        if (
            isinstance(self.resolution, bool)
            or not isinstance(self.resolution, (int, float))
            or not 0 <= self.resolution < 1
        ):
            raise ConfigError("resolution", self.resolution, "a fraction in [0, 1) (0.05 is 5%)")
        if not isinstance(self.use_cache, bool):
            raise ConfigError("use_cache", self.use_cache, "true or false")
        if not isinstance(self.space_values, dict):
            raise ConfigError("space_values", self.space_values, "an object {name: [values]}")
        try:  # a value set the space does not have (a bad value is a ConfigError of its own)
            self.make_space()
        except (TypeError, KeyError) as exc:
            expected = f"value sets of '{self.space}' ({exc})"
            raise ConfigError("space_values", self.space_values, expected) from None
        self._check_generation()

    def _check_generation(self) -> None:
        """Generation objectives need a generation measurement of a space that generates;
        llama.cpp runs the spaces it has a graph for."""
        if self.hardware.backend == "llamacpp":
            from trainfree.hardware.backends.llamacpp import space_error

            why = space_error(self.space)
            if why:
                raise ConfigError("hardware.backend", "llamacpp", f"torch or onnx ({why})")
        generation = needs_generation(self.objectives, self.limits)
        if generation and self.hardware.mode != "generate":
            raise ConfigError(
                "hardware.mode", self.hardware.mode, f"'generate' for objectives {self.objectives}"
            )
        if generation:
            from trainfree.hardware.generation import can_generate

            try:
                space = get_space(self.space, **self.space_values)
            except KeyError:  # an unknown space: reported where the space is made
                return
            if not can_generate(space):
                used = [n for n in (*self.objectives, *self.limits) if n in GENERATION]
                raise ConfigError(
                    "objectives", used[0], f"a cost space {self.space} has (its models have no KV cache)"
                )

    def make_space(self) -> Any:
        return get_space(self.space, **self.space_values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        """What every evaluation record depends on (space and value sets, proxy, hardware
        settings, seed): records of another fingerprint are never mixed into a run."""
        keep = {k: getattr(self, k) for k in ("space", "space_values", "proxy", "seed")}
        # how long to wait and how often to repeat change no figure's meaning: runs written
        # before max_repeats existed keep their fingerprint
        skip = ("timeout_s", "max_repeats")
        keep["hardware"] = {k: v for k, v in self.hardware.as_dict().items() if k not in skip}
        text = json.dumps(keep, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Any) -> SearchSettings:
        if not isinstance(data, dict):
            raise ConfigError("settings", type(data).__name__, "a JSON object")
        data = dict(data)
        limits = dict(data.pop("limits", None) or {})
        for old, name in _OLD_LIMITS.items():  # settings files written before `limits`
            value = data.pop(old, None)
            if value is not None:
                limits[name] = value
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], data[unknown[0]], f"a settings field ({sorted(known)})")
        if "space" not in data:
            raise ConfigError("space", None, "a space name")
        hardware = data.get("hardware", {})
        if not isinstance(hardware, dict):
            raise ConfigError("hardware", hardware, "an object of hardware settings")
        bad = sorted(set(hardware) - set(HardwareSettings.__dataclass_fields__))
        if bad:
            raise ConfigError(f"hardware.{bad[0]}", hardware[bad[0]], "a hardware setting")
        data["hardware"] = HardwareSettings(**hardware)
        data["limits"] = limits
        out = cls(**data)
        out.validate()
        return out


def limit_text(name: str, value: float) -> str:
    o = OBJECTIVES[name]
    shown = f"{value:g}" if not math.isinf(value) else "inf"
    return f"{name} <= {shown}{(' ' + o.unit) if o.unit else ''}"
