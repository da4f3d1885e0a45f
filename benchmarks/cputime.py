"""Processor time for benchmarks whose work runs in child processes too (ffmpeg, espeak-ng, a
``surmesure`` command): this process's and its waited-for children's, user and system."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def cpu() -> float:
    """Processor seconds used so far by this process and the children it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """``work()``, its wall and processor seconds."""
    wall, used = time.perf_counter(), cpu()
    done = work()
    return done, time.perf_counter() - wall, cpu() - used
