"""``python -m bridge.cli``: the same as the ``mcp-bridge`` console script."""

import sys

from . import main

sys.exit(main())
