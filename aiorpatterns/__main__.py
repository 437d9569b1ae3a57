"""``python -m aiorpatterns worker …``: the package's command line (the ``aiorpatterns`` script).

The commands live with their family: the worker command in :mod:`aiorpatterns.queues.command`.
"""

import sys

from .queues.command import main

if __name__ == "__main__":
    sys.exit(main())
