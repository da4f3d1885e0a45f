"""Files a channel wrote (print batches, call lists), replaced whole when they must change."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO


def replace_file(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Replace ``path`` by what ``write`` writes, with the same mode (a call list's 0600): the
    new content goes to a file beside it, created with that mode, then renamed over it, so a
    reader sees the old file or the new one, never half of one, and the old content is not
    left in a copy."""
    mode = stat.S_IMODE(path.stat().st_mode)
    temporary = path.with_name(f".{path.name}.rewrite")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a rewrite that was interrupted
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with open(descriptor, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
