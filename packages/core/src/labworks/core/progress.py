"""Progress bars for long work: tqdm, shown on the main process only."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

from labworks.core.distributed import is_main_process

T = TypeVar("T")

__all__ = ["progress"]


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    disable: bool | None = None,
    **kwargs: Any,
) -> tqdm:
    """A tqdm bar; hidden on non-zero ranks and when ``LABWORKS_NO_PROGRESS=1``.

    Use it around loops (``for batch in progress(loader, desc="train")``) or manually
    (``bar = progress(total=n); bar.update(k)``).
    """
    if disable is None:
        disable = not is_main_process() or os.environ.get("LABWORKS_NO_PROGRESS") == "1"
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **kwargs)
