"""``python -m flipkart_otc``: the command line (see :mod:`flipkart_otc.cli`)."""

import sys

try:  # a Ctrl+C while the (light) CLI module loads: no traceback, as inside main()
    from .cli import main
except KeyboardInterrupt:
    sys.exit(130)

sys.exit(main())
