"""One-line errors for a family of subcommands: a message and an exit code, never a traceback."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

__all__ = ["Handler", "one_line_errors"]

Handler = Callable[[argparse.Namespace], int]


def one_line_errors(
    label: str,
    *expected: type[BaseException],
    code: int = 2,
    quiet_interrupt: bool = False,
) -> Callable[[Handler], Handler]:
    """Wrap handlers so ``expected`` failures print ``governed-db LABEL: error: ...``.

    ``quiet_interrupt``: Ctrl-C ends the command with 130 and no message (``--follow``).
    """

    def wrap(func: Handler) -> Handler:
        @functools.wraps(func)
        def run(args: argparse.Namespace) -> int:
            try:
                return func(args)
            except expected as exc:
                print(f"governed-db {label}: error: {exc}", file=sys.stderr)
                return code
            except KeyboardInterrupt:
                if not quiet_interrupt:
                    raise
                return 130

        return run

    return wrap
