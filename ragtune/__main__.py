"""`python -m ragtune ...` hands off to the CLI."""

import sys

from .cli import main

sys.exit(main())
