"""A tqdm progress bar behind the ``progress(fraction, message)`` callback the pipelines take."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[float, str], None]]:
    """Yield a callback that moves a 0-100 % bar on stderr and shows the current step."""
    with tqdm(total=100, desc=description, unit="%", file=sys.stderr, leave=False,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:
        def update(fraction: float, message: str) -> None:
            bar.n = round(100 * min(max(fraction, 0.0), 1.0))
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

        yield update
