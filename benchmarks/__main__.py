"""Run ``python -m benchmarks <pipeline|lock|semaphore|all>``: the book's tables, measured here."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
