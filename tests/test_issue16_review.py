"""Found by an adversarial review of issue 16 (notebook API, LaTeX, shell use, --random): each
test failed before its fix."""

import json

import numpy as np
import pytest

from gradcli.cli import main


def run(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("command", ["grad", "hess"])
@pytest.mark.parametrize("as_json", [False, True])
def test_random_with_a_named_dimension_is_a_data_error_not_internal(capsys, command, as_json):
    """A symbolic problem compiles lazily; --random must still say which shape lacks a size."""
    rc, out, err = run(capsys, command, "x'@A@x wrt x", "--random", "-s", "x=n", *(["--json"] if as_json else []))
    assert rc == 1
    message = json.loads(out)["error"] if as_json else {"kind": "data", "message": err}
    assert message["kind"] == "data" and "internal" not in message["message"]
    assert "--random needs numeric shapes" in message["message"]
