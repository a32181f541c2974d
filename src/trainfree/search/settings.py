"""What a search run was asked to do, saved as ``settings.json`` in its run directory.

Everything is validated before anything is written (a bad value never leaves a settings file
that makes the folder unusable), and a settings file read back goes through the same checks,
so a hand-edited ``"pop_size": "12"`` is one clear error, not a traceback.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from trainfree.errors import ConfigError
from trainfree.hardware import HardwareSettings
from trainfree.hardware.settings import backends, get_backend
from trainfree.objectives import (
    OBJECTIVES,
    check_limits,
    check_objectives,
    generation_names,
    needs_generation,
    parse_limits,
)
from trainfree.proxies import list_proxies
from trainfree.proxies.balance import AlphaStrategy, parse_alpha
from trainfree.registry import suggest
from trainfree.search.algorithms import ALGORITHMS
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


@dataclass(frozen=True)
class Budget:
    """What a run may spend: ``evaluations`` (distinct architectures) or ``seconds`` of wall
    time (a deadline from the command's start); ``text`` as it was written (settings.json)."""

    evaluations: int | None
    seconds: float | None
    text: str

    @classmethod
    def parse(cls, text: str | Budget) -> Budget:
        """``"200"`` -> 200 evaluations; ``"90s"``, ``"10m"``, ``"1.5h"`` -> seconds of wall time."""
        if isinstance(text, Budget):
            return text
        t = str(text).strip().lower()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)", t)
        if m:
            seconds = float(m.group(1)) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
            if seconds <= 0:
                raise ConfigError("budget", text, "a positive duration")
            return cls(None, seconds, str(text))
        m = re.fullmatch(r"(\d+)\s*(evals?|evaluations?)?", t)
        if m and int(m.group(1)) > 0:
            return cls(int(m.group(1)), None, str(text))
        expected = "a number of evaluations (e.g. 200) or a wall time (e.g. 90s, 10m, 1h)"
        raise ConfigError("budget", text, expected)

    def larger_than(self, other: Budget) -> bool:
        """Whether this budget gives a finished run more to do than ``other`` did (another
        kind of budget counts as more)."""
        if (self.evaluations is None) != (other.evaluations is None):
            return True
        more_evals = (self.evaluations or 0) > (other.evaluations or 0)
        return more_evals or (self.seconds or 0.0) > (other.seconds or 0.0)

    def __str__(self) -> str:
        return self.text


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """``(evaluations, seconds)`` of a budget's text (see :meth:`Budget.parse`)."""
    budget = Budget.parse(text)
    return budget.evaluations, budget.seconds


def parse_alpha_setting(value: str | AlphaStrategy) -> AlphaStrategy:
    """``--alpha`` as the search takes it: label-free strategies only (the search has no labels)."""
    if isinstance(value, AlphaStrategy):
        strategy = value
    else:
        try:
            strategy = parse_alpha(str(value))
        except ValueError:
            raise ConfigError("alpha", value, "'heuristic' or a number in [0, 1]") from None
    if strategy.kind == "fit":
        raise ConfigError("alpha", str(value), "'heuristic' or a number in [0, 1] (fit:K needs labels)")
    return strategy


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, value, f"an integer >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, value, f"an integer <= {maximum}")


@dataclass
class SearchSettings:
    """Everything a run needs, typed: ``budget`` and ``alpha`` are parsed when the settings
    are made (their text is accepted and parsed once, here), ``limits`` are
    ``{objective: maximum in its unit}``. ``pop_size`` None: sized to the budget once the cost
    of one evaluation is known (see ``SearchRun``). ``costs``: where measured costs come from
    (``predicted`` by a cost model, or ``measured``), as ``--costs`` and settings.json say."""

    space: str
    space_values: dict[str, list[Any]] = field(default_factory=dict)
    proxy: str = "zerolm"
    alpha: AlphaStrategy = field(default_factory=lambda: AlphaStrategy("heuristic"))
    objectives: list[str] = field(default_factory=lambda: ["latency", "memory"])
    hardware: HardwareSettings = SEARCH_HARDWARE
    limits: dict[str, float] = field(default_factory=dict)
    costs: str = "predicted"
    calibration: int | None = None  # models measured to calibrate the cost model (None: by budget)
    budget: Budget = field(default_factory=lambda: Budget(None, 240.0, "4m"))
    pop_size: int | None = None
    seed: int = 0
    workers: int = 2
    algorithm: str = "nsga2"
    use_cache: bool = True
    #: measured costs closer than this fraction do not tell models apart on the frontier
    #: (see ``pareto.frontier_rows``; 0: the exact frontier)
    resolution: float = 0.05

    def __setattr__(self, name: str, value: Any) -> None:
        """The budget and alpha are typed whenever they are set: text is parsed here, once."""
        if name == "budget":
            value = Budget.parse(value)
        elif name == "alpha":
            value = parse_alpha_setting(value)
        super().__setattr__(name, value)

    @classmethod
    def parse(
        cls,
        *,
        objectives: str | list[str] = "latency,memory",
        limits: Sequence[str] | Mapping[str, float] | None = None,
        budget: str = "4m",
        alpha: str = "heuristic",
        **values: Any,
    ) -> SearchSettings:
        """Settings from the command line's strings (``objectives="latency,memory"``,
        ``limits=["latency=50ms"]`` or already ``{"latency": 50.0}``, ``budget="4m"``,
        ``alpha="heuristic"``), each parsed once and the whole validated; ``values``: the
        other fields, typed. A run whose objectives or limits are generation costs measures
        generation: its ``hardware`` is set to ``mode="generate"``."""
        if isinstance(objectives, str):
            objectives = [o.strip() for o in objectives.split(",") if o.strip()]
        parsed = check_limits(limits) if isinstance(limits, Mapping) else parse_limits(limits or [])
        hardware = values.pop("hardware", SEARCH_HARDWARE)
        if needs_generation(objectives, parsed) and hardware.mode != "generate":
            hardware = replace(hardware, mode="generate")
        settings = cls(
            objectives=objectives, limits=parsed, budget=budget, alpha=alpha, hardware=hardware, **values
        )
        settings.validate()
        return settings

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
        why = get_backend(self.hardware.backend).space_error(self.space)
        if why:
            able = " or ".join(b.name for b in backends() if not b.space_error(self.space))
            raise ConfigError("hardware.backend", self.hardware.backend, f"{able} ({why})")
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
                used = [n for n in (*self.objectives, *self.limits) if n in generation_names()]
                raise ConfigError(
                    "objectives", used[0], f"a cost space {self.space} has (its models have no KV cache)"
                )

    def make_space(self) -> Any:
        return get_space(self.space, **self.space_values)

    def to_dict(self) -> dict[str, Any]:
        """As settings.json holds them: the budget and alpha as text."""
        out = asdict(self)
        out.update(alpha=str(self.alpha), budget=self.budget.text)
        return out

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
