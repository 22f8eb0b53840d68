import sys

from vidwatch.cli import main

sys.exit(main())
