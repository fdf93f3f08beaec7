"""Arrays from files named in a config (.npy, .npz, .csv, .txt), and trained weights to .npz.

Paths are relative to the config's folder. Everything a file can get wrong is a ConfigError
with the key path: a missing or unreadable file, a pickle (allow_pickle stays off), a
non-numeric or non-finite value, too many numbers.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcalc.errors import ConfigError, KeyPath, did_you_mean
from gradcalc.limits import MAX_PARAMETERS

if TYPE_CHECKING:
    from gradcalc.step.trace import RunTrace

SUFFIXES = (".npy", ".npz", ".csv", ".txt")

Fail = Callable[[KeyPath, str, "str | None"], ConfigError]


def load_array(name: str, key: str | None, base: Path, path: KeyPath, fail: Fail) -> np.ndarray:
    """The float64 array in file `name` (for .npz the member `key`)."""
    file = base / name
    where = (*path, "file")
    if file.suffix.lower() not in SUFFIXES:
        raise fail(where, f"'{name}': expected a .npy, .npz, .csv or .txt file", None)
    if not file.is_file():
        folder = "" if str(base) == "." else f" {base}"
        hint = f"paths are relative to the config's folder{folder}"
        raise fail(where, f"no such file '{name}'", hint)
    if key is not None and file.suffix.lower() != ".npz":
        raise fail((*path, "key"), "'key' names an array inside a .npz file", None)
    limit = 8 * MAX_PARAMETERS + 1_000_000
    try:
        suffix = file.suffix.lower()
        if suffix == ".npy":
            if file.stat().st_size > limit:
                raise fail(where, f"'{name}' is larger than {_mb(limit)}", None)
            array = np.load(file, allow_pickle=False)
        elif suffix == ".npz":
            array = _npz_member(file, name, key, path, fail, limit)
        else:
            if file.stat().st_size > 4 * limit:
                raise fail(where, f"'{name}' is larger than {_mb(4 * limit)}", None)
            delimiter = "," if suffix == ".csv" else None
            with warnings.catch_warnings():
                # "input contained no data": an empty file is refused below, in one line.
                warnings.simplefilter("ignore", UserWarning)
                array = np.loadtxt(file, delimiter=delimiter, dtype=float, ndmin=1)
    except ConfigError:
        raise
    except ValueError as exc:
        text = str(exc)
        if "allow_pickle" in text:
            raise fail(
                where,
                f"'{name}' holds Python objects (a pickle); only plain numeric arrays are "
                "loaded (allow_pickle stays off)",
                "save it with numpy.save of a float array",
            ) from None
        raise fail(where, f"cannot read '{name}': {text.splitlines()[0][:200]}", None) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise fail(where, f"cannot read '{name}': {exc}", None) from None
    if array.dtype.kind not in "iuf":
        raise fail(where, f"'{name}' holds {array.dtype} values, not numbers", None)
    array = np.asarray(array, dtype=float)
    if array.size > MAX_PARAMETERS:
        raise fail(
            where, f"'{name}' holds {array.size:,} numbers (at most {MAX_PARAMETERS:,})", None
        )
    if array.size == 0:
        raise fail(where, f"'{name}' holds no numbers", None)
    bad = ~np.isfinite(array)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise fail(
            where, f"'{name}' holds a non-finite value ({array[at]}) at index {list(at)}", None
        )
    return array


def _npz_member(
    file: Path, name: str, key: str | None, path: KeyPath, fail: Fail, limit: int
) -> np.ndarray:
    with np.load(file, allow_pickle=False) as archive:
        keys = list(archive.files)
        if key is None:
            if len(keys) != 1:
                raise fail(
                    path,
                    f"'{name}' holds {len(keys)} arrays ({', '.join(keys[:8])}): "
                    "say which with 'key:'",
                    None,
                )
            key = keys[0]
        if key not in keys:
            raise fail((*path, "key"), f"'{name}' has no array '{key}'", did_you_mean(key, keys))
        # Refuse a member that unpacks to more than the limit before unpacking it.
        with zipfile.ZipFile(file) as zf:
            info = zf.getinfo(f"{key}.npy")
        if info.file_size > limit:
            raise fail((*path, "key"), f"'{key}' in '{name}' is larger than {_mb(limit)}", None)
        return archive[key]


def _mb(size: int) -> str:
    return f"{size // 1_000_000} MB"


def weights_npz(trace: RunTrace) -> bytes:
    """The parameters after the last step as .npz bytes: w2, b2, w3, b3, … (and an activation's
    learnable parameters as, e.g., a2); the CLI writes them atomically, as any --output."""
    import io

    arrays: dict[str, np.ndarray] = {}
    for p in trace.parameters:
        arrays[f"w{p.layer}"] = p.weights
        arrays[f"b{p.layer}"] = p.biases
        for name, value in p.params.items():
            arrays[f"{name}{p.layer}"] = np.asarray(value)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
