import sys

from smcore.cli import main

sys.exit(main())
