"""`python -m gradcli`: the same process as the `gradcli` command (see gradcli.process)."""

from gradcli.process import run

if __name__ == "__main__":
    run()
