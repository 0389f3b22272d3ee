"""The user's cache folder, for what this machine measured once (``--backend auto``'s timings and
verdicts, the thread policy): ``$FNAC_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/fnac``, else
``~/.cache/fnac`` (the XDG base directory specification).

An entry is one JSON file named by its kind and a digest of its key, holding the key itself (a
digest collision or a hand-edited file is told by it) and its value. It is written whole: a
temporary file renamed over the old one, so two workers that start at once never leave half a
file. An entry that cannot be read, is not JSON, or was made for another key is ignored with a
warning, never an error: what it held is measured again and written anew. Deleting the folder
(or ``FNAC_REMEASURE=1``, which ``realtime.autoselect`` reads) forgets everything. Torch-free:
the window's process reads the thread policy from here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
FORMAT = "fnac-cache"


def cache_dir() -> Path:
    """Where the entries go (not created here)."""
    if os.environ.get("FNAC_CACHE_DIR"):
        return Path(os.environ["FNAC_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"  # per XDG
    return base / "fnac"


def entry_path(kind: str, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{kind}-{digest}.json"


def read(kind: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The value stored for ``key``; None when there is none, or it is unusable (warned)."""
    path = entry_path(kind, key)
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring the cache file %s (%s): measuring again", path, exc)
        return None
    ok = isinstance(entry, dict) and entry.get("format") == FORMAT and entry.get("kind") == kind
    if not ok or not isinstance(entry.get("value"), dict):
        log.warning("ignoring the cache file %s (not a %s entry): measuring again", path, kind)
        return None
    if entry.get("key") != json.loads(json.dumps(key)):  # as JSON would give it back
        log.warning("ignoring the cache file %s (made for another key): measuring again", path)
        return None
    return entry["value"]


def write(kind: str, key: dict[str, Any], value: dict[str, Any]) -> Path | None:
    """Store ``value`` for ``key``; the path, or None when the folder is not writable (warned:
    the verdict then holds for this process only)."""
    path = entry_path(kind, key)
    entry = {"format": FORMAT, "kind": kind, "key": key, "value": value}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(entry, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write the cache file %s (%s): the result is not kept", path, exc)
        return None
    return path
