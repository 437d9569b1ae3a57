"""``python -m aiorpatterns.worker TARGET [options]``: the worker command (``aiorpatterns worker``).

The command lives with the queues, in :mod:`aiorpatterns.queues.command`, and the
:class:`~aiorpatterns.Worker` it serves in :mod:`aiorpatterns.queues.worker`; this module only
gives the command the name a deployment expects (Redis in Action §6.4.1).
"""

import sys

from .queues.command import main

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
