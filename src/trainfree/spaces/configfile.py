"""Config files: one architecture as JSON, either a bare config or, as a search writes them,
``{"space": NAME, "space_values": {...}, "config": {...}}`` so that ``info``, ``profile`` and
``export`` need no ``--space``. Reading names the file and the field of anything wrong."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainfree.errors import ConfigError, TrainfreeError
from trainfree.io import UnsafeFileError, read_json
from trainfree.registry import unknown
from trainfree.spaces import get_space, list_spaces

#: a config is a few kB; a file much larger is not one
MAX_CONFIG_BYTES = 16 << 20


def config_file_payload(space: Any, config: Any) -> dict[str, Any]:
    """What a search writes for one architecture: its space, value sets and config."""
    values = {
        k: list(v) for k, v in space.values.items() if tuple(v) != tuple(space.default_values.get(k, ()))
    }
    return {"space": space.name, "space_values": values, "config": space.config_to_dict(config)}


def read_config_file(path: str | Path, follow: bool = True) -> tuple[str | None, dict[str, Any]]:
    """``(space or None, config dict)`` of a config file: a bare config dict, or
    ``{"space": NAME, "config": {...}}``. Only a regular file is read (a FIFO would never
    answer); ``follow``: through a symbolic link (a file the user named, not a run's own)."""
    p = Path(path)
    try:
        data = read_json(p, follow=follow, limit=MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise TrainfreeError(f"{p}: no such config file") from None
    except UnsafeFileError as exc:
        raise TrainfreeError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise TrainfreeError(f"{p}: not a JSON config file ({exc})") from None
    if not isinstance(data, dict):
        raise TrainfreeError(f"{p}: expected a JSON object (a config), found {type(data).__name__}")
    if "config" in data and isinstance(data["config"], dict):
        space = data.get("space")
        if space is not None and not isinstance(space, str):
            raise ConfigError("space", space, "a space name", str(p))
        return space, data["config"]
    return None, data


def resolve_config(space: Any, data: Mapping[str, Any], where: str) -> Any:
    """The typed config, or a one-line error; a config that another space accepts says so."""
    try:
        return space.config_from_dict(data, where)
    except ConfigError as exc:
        for other in list_spaces():
            if other == space.name:
                continue
            try:
                get_space(other).config_from_dict(data)
            except (TrainfreeError, TypeError, ValueError, KeyError):
                continue
            raise TrainfreeError(
                f"{where}: this is a config of space '{other}', not '{space.name}' (use --space {other})"
            ) from None
        raise exc from None


def load_config(path: str | Path, space_name: str | None = None) -> tuple[Any, Any]:
    """``(space, typed config)`` of a config file; ``space_name`` is needed only for a bare
    config and must agree with the file's own."""
    file_space, data = read_config_file(path)
    name = space_name or file_space
    if name is None:
        raise TrainfreeError(f"{path} does not name its space; pass --space")
    if file_space is not None and name != file_space:
        raise TrainfreeError(f"{path} is a config of space '{file_space}', not '{name}'")
    if name not in list_spaces():
        raise TrainfreeError(unknown("space", name, list_spaces()))
    space = get_space(name)
    return space, resolve_config(space, data, str(path))
