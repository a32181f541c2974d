"""The contract every search space fulfils (the genome operators they share are in
``genome.py``, the config parsers' checks in ``checks.py``).

A search space is one file holding a :class:`SearchSpace` subclass registered with
``@register_space("name")`` (its config dataclass and model may live in that file or, when
they are long, in ``<name>_config.py`` / ``<name>_model.py`` next to it). The subclass
describes its genome (a fixed-length list of categorical genes, see :class:`Gene`); sampling,
mutation, crossover and the integer encoding that an evolutionary optimiser needs are derived
from that description once (``genome.py``), so that no space re-implements them. A space with a
published benchmark declares it in its ``benchmark`` attribute (:class:`BenchmarkSource`:
where the data lives, which reader reads it, its targets) and implements
``config_from_benchmark``; ``trainfree.bench.load_benchmark`` needs nothing else.

Built models follow one structural convention so that proxies can find sub-modules without
knowing the space: ``model.embedding`` (input embedding, positions included), ``model.blocks``
(an ``nn.ModuleList``; each block has ``.attn``, the token mixer, and ``.ffn``, the whole
feed-forward stack) and optionally ``model.head`` (the output layer). What the data-dependent
proxies ask of a model beyond that is the :class:`~trainfree.spaces.protocol.ProxyModel`
protocol.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from trainfree.errors import ConfigError
from trainfree.spaces.checks import check_choice, check_int, check_int_list, get_field
from trainfree.spaces.genome import Gene, GenomeOperators

__all__ = [  # the genome's and the parsers' helpers, re-exported: spaces import them from here
    "MAX_LAYERS",
    "BenchmarkSource",
    "ConfigError",
    "Gene",
    "GenomeOperators",
    "ParamCounts",
    "SearchSpace",
    "check_choice",
    "check_int",
    "check_int_list",
    "get_field",
    "module_groups",
    "seeded",
]

C = TypeVar("C")

#: the most layers a value set may offer: the genome holds one slot of genes per layer, so the
#: largest ``n_layer`` decides its length (``--set n_layer=[1e9]`` must be refused, not allocated)
MAX_LAYERS = 512


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of one architecture, by functional sub-module.

    ``embedding + attention + ffn + norm + head + other == total`` (the buckets partition the
    distinct parameters, tied tensors counted once). ``decoder`` is the non-embedding count
    *as the benchmark's authors defined it* (LiteTransformerSearch's ``nonembedding``), which
    for Transformer-XL is not simply ``total - embedding - head``; see the space's docstring.
    """

    embedding: int
    attention: int
    ffn: int
    norm: int
    head: int
    other: int
    decoder: int
    total: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BenchmarkSource:
    """Where a space's published benchmark lives and how to read it.

    ``path`` is relative to ``$TRAINFREE_DATA`` (a file or a folder); ``reader`` names a
    reader of ``trainfree.bench.loaders.READERS`` (``"nas-bench-bert"``: the
    NAS-Bench-BERT JSON list; ``"archai"``: a LiteTransformerSearch folder of
    ``model_config.yaml`` files with ``ppl_summary.yaml``) or is a function
    ``(space, path, target) -> (file, entries, skipped)`` for a new format. ``targets`` are
    the ground-truth fields, the first being the default; ``higher_is_better`` says how to
    read them; ``title`` names the benchmark in messages.
    """

    title: str
    path: str
    reader: str | Callable[..., Any]
    targets: tuple[str, ...]
    higher_is_better: bool

    @property
    def default_target(self) -> str:
        return self.targets[0]


class SearchSpace(GenomeOperators[C], ABC):
    """Base class of a search space: config I/O, the genome's description, model building;
    the genome operators are inherited (:class:`~trainfree.spaces.genome.GenomeOperators`).

    ``default_values`` holds the value sets of the space (what ``sample`` draws from); pass
    keyword arguments to the constructor to narrow or widen them, e.g.
    ``get_space("gpt2", n_layer=[2, 4, 6])``. ``benchmark`` declares the space's published
    benchmark, if it has one (see :class:`BenchmarkSource`).
    """

    name: ClassVar[str] = ""
    default_values: ClassVar[dict[str, tuple[Any, ...]]] = {}
    benchmark: ClassVar[BenchmarkSource | None] = None

    def __init__(self, **values: Sequence[Any]) -> None:
        self.values: dict[str, tuple[Any, ...]] = dict(self.default_values)
        for key, seq in values.items():
            if key not in self.default_values:
                known = ", ".join(self.default_values)
                raise ConfigError(key, seq, f"one of the value sets {known}", where=f"space {self.name}")
            if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence) or len(seq) == 0:
                raise ConfigError(key, seq, "a non-empty list of values", where=f"space {self.name}")
            self.values[key] = tuple(seq)
        # genes() checks every value set's values (types, ranges, combinations that must
        # build), so that a bad --set is one ConfigError here, never a failure mid-search
        self._genes = self.genes()

    def int_values(
        self, key: str, minimum: int, maximum: int | None = None, also: tuple[int, ...] = ()
    ) -> tuple[int, ...]:
        """Check that value set ``key`` holds integers in ``[minimum, maximum]`` (or one of
        ``also``, e.g. ``-1`` for "same as d_model"), store them as ints and return them."""
        where = f"space {self.name} value set"
        expected = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
        if also:
            expected += f" (or {', '.join(map(str, also))})"
        out = []
        for value in self.values[key]:
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and int(value) in also:
                out.append(int(value))
                continue
            try:
                number = check_int(value, key, minimum, where)
            except ConfigError:
                raise ConfigError(key, value, expected, where) from None
            if maximum is not None and number > maximum:
                raise ConfigError(key, value, expected, where)
            out.append(number)
        self.values[key] = tuple(out)
        return self.values[key]

    # ----------------------------------------------------------------- configs
    @abstractmethod
    def config_from_dict(self, data: Mapping[str, Any], where: str | None = None) -> C:
        """Validate a plain dict (our own JSON form) and return the typed config; a bad field
        raises :class:`ConfigError` naming it (prefixed with ``where``, e.g. the file)."""

    def config_from_benchmark(self, entry: Mapping[str, Any], where: str | None = None) -> C:
        """The config of one entry of the space's benchmark, in the benchmark's own format
        (a NAS-Bench-BERT JSON object, an archai ``model_config.yaml``...). Spaces that declare
        a ``benchmark`` override it; the benchmark readers call it for every entry."""
        raise ConfigError("<entry>", type(entry).__name__, f"no benchmark format (space {self.name})", where)

    def check_config(self, config: C, where: str | None = None) -> None:
        """Cross-field rules of this space that a config's own parser cannot see (heads that
        must divide the width the space builds...). ``config_from_dict``,
        ``config_from_benchmark`` and ``build`` call it; the default accepts everything."""

    def config_to_dict(self, config: C) -> dict[str, Any]:
        """The JSON-ready form of a config; ``config_from_dict`` inverts it exactly."""
        return json.loads(json.dumps(dataclasses.asdict(config)))  # tuples -> lists

    def config_to_json(self, config: C) -> str:
        return json.dumps(self.config_to_dict(config), separators=(",", ":"), sort_keys=True)

    def config_from_json(self, text: str) -> C:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("<json>", text[:60], f"valid JSON ({exc})") from None
        except RecursionError:  # a hostile file nested 100,000 deep
            raise ConfigError("<json>", text[:20] + "...", "a config, not nested this deeply") from None
        if not isinstance(data, dict):
            raise ConfigError("<root>", data, "a JSON object")
        return self.config_from_dict(data)

    # ------------------------------------------------------------------ genome
    @abstractmethod
    def genes(self) -> list[Gene]:
        """The fixed-length genome, built from ``self.values``."""

    @abstractmethod
    def to_genes(self, config: C) -> list[Any]:
        """One value per gene. Genes a config does not use (layers beyond its depth) must
        still get a value, by convention a copy of the last used layer's, so that growing
        the depth by mutation repeats the last layer."""

    @abstractmethod
    def from_genes(self, values: Sequence[Any]) -> C:
        """The config that a full gene-value list describes (unused genes ignored)."""

    # ------------------------------------------------------------------ models
    @abstractmethod
    def build(self, config: C, seed: int | None = 0, device: str | torch.device | None = None) -> nn.Module:
        """A randomly initialised ``nn.Module`` as the benchmark's authors initialised it.

        ``seed`` makes the weights reproducible without touching the global RNG state;
        ``None`` uses (and advances) the global state. ``device="meta"`` builds the module
        structure without allocating or initialising weights, so that counting the parameters
        of any model costs no memory.
        """

    @abstractmethod
    def param_counts(self, config: C) -> ParamCounts:
        """Parameter counts computed analytically (no model built)."""

    @abstractmethod
    def flops(self, config: C, seq_len: int) -> int:
        """Forward FLOPs (2 x multiply-accumulates of every matrix product, attention
        scores and output layer included; element-wise work ignored) for one sequence."""

    @abstractmethod
    def vocab_size(self, config: C) -> int:
        """Number of token ids the model accepts."""

    @abstractmethod
    def max_seq_len(self, config: C) -> int:
        """Longest sequence ``build(config)`` accepts."""

    def example_input(
        self, config: C, batch_size: int = 1, seq_len: int | None = None, seed: int = 0
    ) -> torch.Tensor:
        """A seeded batch of random token ids ``[batch_size, seq_len]``."""
        seq_len = self.max_seq_len(config) if seq_len is None else seq_len
        gen = torch.Generator().manual_seed(seed)
        return torch.randint(0, self.vocab_size(config), (batch_size, seq_len), generator=gen)

    def inference(self, model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        """The deployment forward pass whose latency and memory ``trainfree.hardware`` measures.

        By default the model's own forward; language-model spaces override it to include the
        output layer (log-probabilities of every next token), which is what LTS timed and
        what a user pays for at inference."""
        return model(input_ids)

    def describe(self) -> dict[str, list[Any]]:
        """The value sets, for ``trainfree spaces``."""
        return {k: list(v) for k, v in self.values.items()}

    def cost_features(self, config: C, batch_size: int, seq_len: int) -> dict[str, float]:
        """Analytic quantities that the latency and memory of ``inference`` follow: the
        inputs of the cost model that ``trainfree.hardware.calibration`` calibrates on a device.

        The default serves any space: the matrix-product FLOPs of the batch, the parameter
        count (weights streamed through the caches once per forward) and the number of
        layers (a fixed per-operator overhead, which dominates small models on a CPU). A
        space may add terms whose cost is not in its FLOPs (element-wise work, softmax)."""
        counts = self.param_counts(config)
        layers = getattr(config, "n_layer", None)
        if layers is None:
            layers = len(getattr(config, "layers", ()) or ())
        return {
            "flops": float(batch_size * self.flops(config, seq_len)),
            "params": float(counts.total),
            "layers": float(layers),
            "tokens": float(batch_size * seq_len),
        }

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the class docstring as plain text (no reStructuredText
        markup): the whole description ``trainfree spaces`` shows, never cut mid-sentence."""
        paragraph = inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0]
        return re.sub(r"(:\w+:)?``?([^`]+)``?", r"\2", " ".join(paragraph.split()))


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """A private CPU RNG state seeded with ``seed`` (no-op for None); the global state and
    any CUDA state are left as they were."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def module_groups(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Named parameters by functional group, following the structural convention above:
    ``embedding``, ``attention`` (every ``block.attn``), ``ffn`` (every ``block.ffn``),
    ``head`` and ``other`` (everything else: norms, biases kept on the model). Tied tensors
    are listed once, in the first group that reaches them."""
    seen: set[int] = set()
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {
        k: [] for k in ("embedding", "attention", "ffn", "head", "other")
    }

    def add(group: str, prefix: str, module: nn.Module) -> None:
        for name, p in module.named_parameters(prefix=prefix):
            if id(p) not in seen:
                seen.add(id(p))
                groups[group].append((name, p))

    if hasattr(model, "embedding"):
        add("embedding", "embedding", model.embedding)
    for i, block in enumerate(model.blocks):
        add("attention", f"blocks.{i}.attn", block.attn)
        add("ffn", f"blocks.{i}.ffn", block.ffn)
    if getattr(model, "head", None) is not None:
        add("head", "head", model.head)
    add("other", "", model)
    return groups
