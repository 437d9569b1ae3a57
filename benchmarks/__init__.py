"""Benchmarks: the throughput tables of *Redis in Action*, reproduced beside aiorpatterns.

Run ``python -m benchmarks <pipeline|lock|semaphore|all>``. Each table module (``pipeline``,
``lock``, ``semaphore``) lists its rows: the book's own code as faithful async ports
(``baselines/``), our implementation, the peers a user would pick, and a ``limit`` row of raw
pipelined commands. :mod:`benchmarks.runner` drives the clients, :mod:`benchmarks.report` prints
and writes the results. Redis in Action §4.5 (pipelines), §6.3 (semaphores) and §11.2 (locks);
the exact definitions are in the project's book inventory, §2.
"""

from __future__ import annotations
