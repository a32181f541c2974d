"""``trainfree export --run``: one or all frontier rows of a finished search run, exported.

What is read from the run is checked here (``settings.json`` as a search reads it, the
frontier's rows, each row's config file inside the run's own ``configs/``); the folders are
written by :mod:`trainfree.export.export`'s writer, all published together.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from trainfree.errors import TrainfreeError
from trainfree.export.export import ExportResult, validate_options, write_export
from trainfree.export.folders import check_out, publish, staging, within
from trainfree.io import read_json
from trainfree.spaces.configfile import read_config_file, resolve_config


def export_run(
    run_dir: str | Path,
    pick: str | int,
    out: str | Path,
    *,
    fmt: str = "hf",
    as_: str = "trainfree",
    force: bool = False,
    seed: int | None = None,
    quantize: str | None = None,
) -> list[ExportResult]:
    """Export frontier row ``pick`` (an index, or ``"all"``) of a search run directory.

    One row goes to ``out`` itself; ``all`` writes one sub-folder per row, named after its
    config file (``frontier_000_arch00042``), all published together. The space (with the
    run's value sets) and, unless given, the seed come from the run's ``settings.json``.
    Only the run's own files are read (regular files inside it), each checked."""
    run = Path(run_dir)
    space, run_seed, models = _read_run(run)
    rows = _pick(pick, len(models), run)
    seed = run_seed if seed is None else seed
    quantize = validate_options(space, fmt, as_, quantize)
    out = check_out(Path(out), force, [run])
    items = []
    for i in rows:
        name, data = _row_config(run, models[i], i, space)
        source = {
            # the run as the user named it, never an absolute path of their machine: the card
            # and trainfree.json travel with the model
            "run": run.name if run.is_absolute() else run.as_posix(),
            "frontier_rank": i,
            "frontier_row": {k: v for k, v in models[i].items() if k != "config"},
        }
        items.append((name.stem, resolve_config(space, data, str(run / name)), source))
    tmp = staging(out)
    results = []
    try:
        for stem, cfg, source in items:
            target = tmp if pick != "all" else tmp / stem
            target.mkdir(exist_ok=True)
            result = write_export(space, cfg, target, fmt, as_, seed, source, quantize)
            result.out = out if pick != "all" else out / stem
            results.append(result)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return results


def _read_run(run: Path) -> tuple[Any, int, list[dict[str, Any]]]:
    """``(space, seed, frontier rows)`` of a finished run: ``settings.json`` read and checked
    as a search reads it, ``frontier.json`` an object whose ``models`` are objects."""
    from trainfree.search.settings import SearchSettings

    if not run.is_dir():
        raise TrainfreeError(f"--run {run}: no such run directory")
    try:
        settings = SearchSettings.from_dict(read_json(run / "settings.json"))
        frontier = read_json(run / "frontier.json")
    except FileNotFoundError as exc:
        if Path(exc.filename or "").name == "settings.json":
            raise TrainfreeError(f"--run {run}: not a search run (no settings.json)") from None
        raise TrainfreeError(
            f"--run {run} has no frontier yet (no frontier.json); let `trainfree search` finish"
        ) from None
    except (TrainfreeError, OSError, ValueError, TypeError, KeyError) as exc:
        why = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise TrainfreeError(f"--run {run}: unreadable settings.json/frontier.json ({why})") from None
    models = frontier.get("models") if isinstance(frontier, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise TrainfreeError(f"--run {run}: frontier.json has no list of models (field 'models')")
    if not models:
        raise TrainfreeError(f"--run {run}: the frontier is empty (no architecture met the constraints)")
    return settings.make_space(), settings.seed, models


#: what a frontier row may name as its config file: one of the run's own ``configs/``
_CONFIG_FILE = re.compile(r"configs/[A-Za-z0-9_.-]+\.json")


def _row_config(run: Path, row: dict[str, Any], i: int, space: Any) -> tuple[Path, Any]:
    """The config file name and config data of frontier row ``i``: its file in the run's own
    ``configs/`` (a regular file, not through a symbolic link), else the row's own copy."""
    name = row.get("config_file") or f"configs/frontier_{i:03d}.json"
    if not isinstance(name, str) or not _CONFIG_FILE.fullmatch(name):
        raise TrainfreeError(
            f"--run {run}: frontier row {i} names config_file {name!r}; expected a file of the run's "
            "configs/ folder (configs/NAME.json)"
        )
    path = run / name
    if (run / "configs").is_symlink() or not within(path, run):
        raise TrainfreeError(f"--run {run}: configs/ is a symbolic link; expected the run's own folder")
    if path.exists() or path.is_symlink():
        file_space, data = read_config_file(path, follow=False)
    else:
        file_space, data = None, row.get("config")
    if not isinstance(data, dict):
        raise TrainfreeError(f"--run {run}: frontier row {i} has no config (field 'config')")
    if file_space is not None and file_space != space.name:
        raise TrainfreeError(f"{path}: a config of space '{file_space}', but the run searched '{space.name}'")
    return Path(name), data


def _pick(pick: str | int, n: int, run: Path) -> list[int]:
    if isinstance(pick, str) and pick.strip().lower() == "all":
        return list(range(n))
    try:
        i = int(pick)
    except (TypeError, ValueError):
        raise TrainfreeError(f"--pick {pick!r}: expected a frontier row number or 'all'") from None
    if not 0 <= i < n:
        raise TrainfreeError(f"--pick {i} is out of range: the frontier of {run} has {n} models (0-{n - 1})")
    return [i]
