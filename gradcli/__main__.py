"""`python -m gradcli`: the same process as the `gradcli` command (see gradcli.process)."""

import sys

from gradcli.process import main

if __name__ == "__main__":
    sys.exit(main())
