"""``python -m paddock.cli``: the same as the ``paddock`` command."""

import sys

from paddock.cli import main

sys.exit(main())
