import sys

from faultbed.cli import main

sys.exit(main())
