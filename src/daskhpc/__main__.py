import sys

from daskhpc.cli import main

sys.exit(main())
