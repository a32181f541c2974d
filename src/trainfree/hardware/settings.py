"""How to measure (:class:`HardwareSettings`) and what measures (a :class:`Backend`).

A hardware backend is one module of :mod:`trainfree.hardware.backends` and one declaration::

    @register_backend("onnx")
    class OnnxBackend(Backend):
        quantize = ("none",)
        def measure(self, space, config, settings, seed, t_setup) -> Measurement: ...

The settings check themselves against the backend they name (its devices, modes and
``--quantize`` values), the profiler asks it to measure, the measurement cache keys entries by
its runtime's version and the cost model asks it for the weights' exact size: none of them
names a backend. The settings and the backends live in one module because each needs the
other's type; the backend modules are found by name at first use (:mod:`trainfree.registry`).
Torch-free at import.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from trainfree.errors import ConfigError
from trainfree.hardware.measurement import Measurement, installed_version
from trainfree.registry import Registry

DEVICES = ("cpu", "cuda")
#: ``forward``: one forward pass of ``seq_len`` tokens; ``generate``: prefill, decode per
#: token and memory at a context (:mod:`trainfree.hardware.generation`)
MODES = ("forward", "generate")
#: the generation settings and their defaults, sized for a 2-core CPU: a 128-token prompt,
#: a 512-token context, 16 generated tokens per timed run. Left out of ``as_dict`` at their
#: defaults, so that the keys of every earlier measurement stay as they were
GENERATION_DEFAULTS = {
    "mode": "forward",
    "prompt_len": 128,
    "context": 512,
    "new_tokens": 16,
    "quantize": "none",
}


class Backend(ABC):
    """A runtime that measures a model: what it accepts and how it measures.

    The class attributes are the declaration; :meth:`measure` is the only method a backend
    must write. ``name`` is set by :func:`register_backend`."""

    name: ClassVar[str] = ""
    #: the runtime's name in a sentence ("PyTorch"; default: ``name``): what a latency is the time of
    title: ClassVar[str] = ""
    #: where backends are listed (``--backend`` choices, error messages): lower first
    order: ClassVar[int] = 100
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    modes: ClassVar[tuple[str, ...]] = MODES
    #: why a mode outside ``modes`` is refused (after "generate with backend NAME")
    modes_note: ClassVar[str] = ""
    #: the ``--quantize`` values it accepts on the CPU ("none": its float weights); on
    #: another device only "none"
    quantize: ClassVar[tuple[str, ...]] = ("none",)
    #: its quantizations in the error that refuses one, e.g. "int8: torch on the cpu"
    quantize_note: ClassVar[str] = ""
    #: bytes of one cached key or value (its KV cache type)
    kv_bytes: ClassVar[int] = 4
    #: distributions whose installed version keys its measurements (another runtime version,
    #: other kernels); () keeps the cache keys of the backends that have none as they were
    runtime: ClassVar[tuple[str, ...]] = ()
    #: set or changed when what it measures changes in a way the runtime's version does not
    #: show: measurements and calibration rows taken the old way are then not served
    method: ClassVar[str] = ""

    @abstractmethod
    def measure(
        self, space: Any, config: Any, settings: HardwareSettings, seed: int, t_setup: float
    ) -> Measurement:
        """Measure ``config`` in this process (``t_setup``: ``time.perf_counter()`` when the
        measurement began, for ``seconds_setup``); a model that cannot run is
        ``Measurement(ok=False, error=...)`` or an exception."""

    def check(self, settings: HardwareSettings) -> None:  # noqa: B027 - most backends need nothing more
        """Raise :class:`ConfigError` for settings this backend cannot measure (beyond the
        devices, modes and quantizations it declares)."""

    def space_error(self, space_name: str) -> str | None:
        """Why the models of space ``space_name`` cannot be measured here (None: they can)."""
        return None

    def config_error(self, space: Any, config: Any, settings: HardwareSettings) -> str | None:
        """One line saying why ``config`` cannot be measured with ``settings`` (None: it can),
        before anything is built."""
        return None

    def weights_mb(self, config: Any, settings: HardwareSettings) -> float | None:
        """The weights' exact size as measured, where it is not the float32 parameters
        (None: the parameter count times 4 bytes)."""
        return None

    def cost_features(self, space: Any, config: Any, settings: HardwareSettings) -> dict[str, float] | None:
        """The cost model's inputs for ``config`` where this runtime's kernels are not what
        the space's features describe (None: the space's ``cost_features`` or
        ``generation_features``). A name ``"<target>:<what>"`` (``latency_ms:``,
        ``prefill_ms:``, ``activation_mb:``) describes that target only; the cost model fits
        each target on its own features and the unprefixed ones."""
        return None

    def runtime_version(self) -> str | None:
        """The installed version of its runtime (read without importing it), or None."""
        return installed_version(*self.runtime) if self.runtime else None

    def key_fields(self) -> dict[str, Any]:
        """What keys its cached measurements and calibration rows besides the settings and the
        machine: its runtime's version and its ``method``, where it declares them (torch
        declares neither, so its keys stay as they were)."""
        out: dict[str, Any] = {}
        if self.runtime:  # another llama.cpp, other kernels
            out["runtime"] = self.runtime_version()
        if self.method:
            out["method"] = self.method
        return out

    def require(self) -> None:  # noqa: B027 - most backends need nothing installed
        """Raise a one-line error if its runtime is not installed (checked before a command
        starts measuring); the default needs nothing beyond trainfree's own requirements."""


BACKENDS: Registry[Backend] = Registry("hardware backend", "trainfree.hardware.backends")


def register_backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator: make a backend available as ``--backend NAME``."""

    def wrap(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        cls.title = cls.title or name
        BACKENDS.register(name, cls())
        return cls

    return wrap


def backends() -> list[Backend]:
    """The registered backends, in their listed order."""
    return sorted((BACKENDS.get(n) for n in BACKENDS.names()), key=lambda b: (b.order, b.name))


def backend_names() -> tuple[str, ...]:
    return tuple(b.name for b in backends())


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (a :class:`ConfigError` naming the known ones otherwise)."""
    if name not in BACKENDS:
        raise ConfigError("backend", name, f"one of {list(backend_names())}")
    return BACKENDS.get(name)


def quantize_values() -> tuple[str, ...]:
    """Every ``--quantize`` value of some backend, each once, in the backends' order."""
    return tuple(dict.fromkeys(q for b in backends() for q in b.quantize))


def _or(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


@dataclass(frozen=True)
class HardwareSettings:
    """How to measure: backend, device and the input shape (defaults as LTS measured)."""

    backend: str = "torch"
    device: str = "cpu"
    batch_size: int = 1
    seq_len: int = 192
    threads: int = 1
    warmup: int = 2
    repeats: int = 10
    timeout_s: float = 600.0
    #: more timed runs while they disagree, up to this many in all (None: ``repeats``)
    max_repeats: int | None = None
    mode: str = "forward"
    prompt_len: int = 128  # P: the prompt of the prefill
    context: int = 512  # C: the context at which decode and memory are measured
    new_tokens: int = 16  # N: single-token steps per timed decode run
    quantize: str = "none"

    def __post_init__(self) -> None:
        backend = get_backend(self.backend)
        if self.device not in DEVICES:
            raise ConfigError("device", self.device, f"one of {list(DEVICES)}")
        if self.device not in backend.devices:
            where = " or ".join(d.upper() for d in backend.devices)
            raise ConfigError(
                "device",
                self.device,
                f"{_or(backend.devices)} (the {self.backend} backend runs on the {where})",
            )
        for name, minimum in (
            ("batch_size", 1),
            ("seq_len", 1),
            ("threads", 1),
            ("warmup", 0),
            ("repeats", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(name, value, f"an integer >= {minimum}")
        top = self.max_repeats
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < self.repeats):
            raise ConfigError("max_repeats", top, f"an integer >= repeats ({self.repeats})")
        if not self.timeout_s > 0:
            raise ConfigError("timeout_s", self.timeout_s, "a positive number of seconds")
        self._check_generation(backend)

    def _check_generation(self, backend: Backend) -> None:
        for name, choices in (("mode", MODES), ("quantize", quantize_values())):
            if getattr(self, name) not in choices:
                raise ConfigError(name, getattr(self, name), f"one of {list(choices)}")
        for name in ("prompt_len", "context", "new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "an integer >= 1")
        if self.prompt_len + self.new_tokens > self.context:
            raise ConfigError(
                "context",
                self.context,
                f"at least prompt_len + new_tokens = {self.prompt_len + self.new_tokens} tokens",
            )
        allowed = backend.quantize if self.device == "cpu" else ("none",)
        if self.quantize not in allowed:
            notes = "; ".join(b.quantize_note for b in backends() if b.quantize_note)
            raise ConfigError("quantize", self.quantize, f"{_or(allowed)} with {self.name} ({notes})")
        if self.mode not in backend.modes:
            raise ConfigError(
                "mode", self.mode, f"{_or(backend.modes)} with backend {self.backend}{backend.modes_note}"
            )
        backend.check(self)

    @property
    def name(self) -> str:
        return f"{self.backend}-{self.device}"

    @property
    def workload(self) -> str:
        """What a measurement times, in words: a forward pass of ``seq_len`` tokens, or
        generation (for titles and headers, so a figure says what it covers)."""
        if self.mode != "generate":
            return f"{self.seq_len} tokens"
        weights = f", {self.quantize} weights" if self.quantize != "none" else ""
        return (
            f"generating: prompt {self.prompt_len}, context {self.context}, "
            f"{self.new_tokens} tokens per run{weights}"
        )

    @property
    def kv_bytes(self) -> int:
        """Bytes of one cached key or value: float32 in PyTorch, float16 in llama.cpp (its
        default cache type): the backend's declaration."""
        return get_backend(self.backend).kv_bytes

    @property
    def clock(self) -> str:
        """``cpu`` (on-CPU time) or ``wall``: what times the runs (``timing.clock_for``)."""
        from trainfree.hardware.timing import clock_for  # numpy: not for the CLI's --help

        return clock_for(self.device, self.threads)

    def as_dict(self) -> dict[str, Any]:
        """The settings; the generation settings only where they differ from their defaults
        (every earlier cache key and settings file stays valid)."""
        out = asdict(self)
        for key, default in GENERATION_DEFAULTS.items():
            if out[key] == default:
                del out[key]
        if self.mode == "forward":  # the generation shape means nothing to a forward pass
            for key in ("prompt_len", "context", "new_tokens"):
                out.pop(key, None)
        return out
