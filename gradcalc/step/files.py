"""Arrays from files named in a config (.npy, .npz, .csv, .txt), and trained weights to .npz.

Paths are relative to the config's folder. Everything a file can get wrong is a ConfigError
with the key path: a missing or unreadable file, content that is not what the suffix says (an
.npz archive named .npy), a pickle (allow_pickle stays off), a header claiming more numbers
than allowed (read before anything is allocated), a non-numeric or non-finite value.
"""

from __future__ import annotations

import io
import math
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from gradcalc.errors import ConfigError, KeyPath, did_you_mean, shorten
from gradcalc.limits import MAX_PARAMETERS

if TYPE_CHECKING:
    from gradcalc.step.trace import RunTrace

SUFFIXES = (".npy", ".npz", ".csv", ".txt")

Fail = Callable[[KeyPath, str, "str | None"], ConfigError]


def load_array(name: str, key: str | None, base: Path, path: KeyPath, fail: Fail) -> np.ndarray:
    """The float64 array in file `name` (for .npz the member `key`)."""
    file = base / name
    where = (*path, "file")
    shown = shorten(name)
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise fail(where, f"'{shown}': expected a .npy, .npz, .csv or .txt file", None)
    try:
        found = file.is_file()
        size = file.stat().st_size if found else 0
    except OSError as exc:  # a name too long for the file system, a loop of symlinks, …
        raise fail(where, f"cannot read '{shown}': {exc.strerror or exc}", None) from None
    if not found:
        folder = "" if str(base) == "." else f" {base}"
        hint = f"paths are relative to the config's folder{folder}"
        raise fail(where, f"no such file '{shown}'", hint)
    if key is not None and suffix != ".npz":
        raise fail((*path, "key"), "'key' names an array inside a .npz file", None)
    limit = 8 * MAX_PARAMETERS + 1_000_000
    try:
        if suffix in (".npy", ".npz"):
            with file.open("rb") as fh:
                magic = fh.read(6)
            zipped = magic[:4] in (b"PK\x03\x04", b"PK\x05\x06")
            if suffix == ".npy" and zipped:
                raise fail(
                    where,
                    f"'{shown}' is an .npz archive (a zip of arrays), not an .npy file",
                    f"rename it to {file.stem}.npz",
                )
            if suffix == ".npz" and magic == _NPY_MAGIC:
                raise fail(
                    where,
                    f"'{shown}' is an .npy file, not an .npz archive",
                    f"rename it to {file.stem}.npy",
                )
        if suffix == ".npy":
            if size > limit:
                raise fail(where, f"'{shown}' is larger than {_mb(limit)}", None)
            with file.open("rb") as fh:
                _check_header(fh, f"'{shown}'", where, fail)
                fh.seek(0)
                array = np.load(fh, allow_pickle=False)
        elif suffix == ".npz":
            array = _npz_member(file, shown, key, path, fail, limit)
        else:
            if size > 4 * limit:
                raise fail(where, f"'{shown}' is larger than {_mb(4 * limit)}", None)
            delimiter = "," if suffix == ".csv" else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an empty file: refused below, in words
                array = np.loadtxt(file, delimiter=delimiter, dtype=float, ndmin=1)
    except ConfigError:
        raise
    except ValueError as exc:
        text = str(exc)
        if "allow_pickle" in text:
            raise fail(
                where,
                f"'{shown}' holds Python objects (a pickle); only plain numeric arrays are "
                "loaded (allow_pickle stays off)",
                "save it with numpy.save of a float array",
            ) from None
        raise fail(where, f"cannot read '{shown}': {text.splitlines()[0][:200]}", None) from None
    except (OSError, EOFError, zipfile.BadZipFile, MemoryError) as exc:
        text = getattr(exc, "strerror", None) or str(exc)
        raise fail(where, f"cannot read '{shown}': {text[:200]}", None) from None
    if array.dtype.kind not in "iuf":
        raise fail(where, f"'{shown}' holds {array.dtype} values, not numbers", None)
    array = np.asarray(array, dtype=float)
    if array.size > MAX_PARAMETERS:
        raise fail(
            where, f"'{shown}' holds {array.size:,} numbers (at most {MAX_PARAMETERS:,})", None
        )
    if array.size == 0:
        raise fail(where, f"'{shown}' holds no numbers", None)
    bad = ~np.isfinite(array)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise fail(
            where, f"'{shown}' holds a non-finite value ({array[at]}) at index {list(at)}", None
        )
    return array


_NPY_MAGIC = b"\x93NUMPY"


def _check_header(fh: IO[bytes], what: str, where: KeyPath, fail: Fail) -> None:
    """Read an .npy header and refuse, before numpy allocates anything, an array that is not
    one of plain numbers or that holds more than MAX_PARAMETERS of them (a header may claim
    any shape, whatever the file's size)."""
    from numpy.lib import format as npy

    if fh.read(6) != _NPY_MAGIC:
        raise fail(where, f"{what} is not an .npy array (no NUMPY header)", None)
    fh.seek(0)
    try:
        version = npy.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = npy.read_array_header_2_0(fh)
        else:
            raise ValueError(f"an .npy format version {version[0]}.{version[1]}")
    except (ValueError, TypeError, SyntaxError) as exc:
        raise fail(where, f"cannot read {what}: {str(exc).splitlines()[0][:200]}", None) from None
    if dtype.hasobject:
        raise fail(
            where,
            f"{what} holds Python objects (a pickle); only plain numeric arrays are loaded "
            "(allow_pickle stays off)",
            "save it with numpy.save of a float array",
        )
    count = math.prod(shape)
    if count > MAX_PARAMETERS:
        raise fail(
            where,
            f"{what} holds an array of shape {list(shape)} ({count:,} numbers; at most "
            f"{MAX_PARAMETERS:,})",
            None,
        )


def _npz_member(
    file: Path, name: str, key: str | None, path: KeyPath, fail: Fail, limit: int
) -> np.ndarray:
    # What is wrong with the member is said at 'key' when the config names one.
    where = (*path, "file") if key is None else (*path, "key")
    with zipfile.ZipFile(file) as zf:
        members = {
            info.filename.removesuffix(".npy"): info for info in zf.infolist() if not info.is_dir()
        }
        keys = list(members)
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
        info = members[key]
        what = f"'{key}' in '{name}'"
        # Refuse a member that unpacks to more than the limit before unpacking it.
        if info.file_size > limit:
            raise fail(where, f"{what} is larger than {_mb(limit)}", None)
        with zf.open(info) as member:
            _check_header(member, what, where, fail)
        with zf.open(info) as member:
            return np.load(io.BytesIO(member.read()), allow_pickle=False)


def _mb(size: int) -> str:
    return f"{size // 1_000_000} MB"


def weights_npz(trace: RunTrace) -> bytes:
    """The parameters after the last step as .npz bytes: w2, b2, w3, b3, … (and an activation's
    learnable parameters as, e.g., a2); the CLI writes them atomically, as any --output."""
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
