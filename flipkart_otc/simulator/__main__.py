"""``python -m flipkart_otc.simulator`` is ``flipkart-otc simulate``."""

import sys

from ..cli import main

sys.exit(main(["simulate", *sys.argv[1:]]))
