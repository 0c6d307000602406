import sys

from graphcf.cli import main

sys.exit(main())
