"""The cyclic garbage collector paused over work that makes many objects at once (a billing
batch, a usage import): they live until the work ends, and the collector would walk them again
and again as they pile up. Reference counting still frees what the work drops; the state the
collector was in comes back at the end."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
