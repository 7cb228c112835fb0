"""``python -m gateway`` is the same as ``tongban``."""

import sys

from gateway.cli.main import main

sys.exit(main())
