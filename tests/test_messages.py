"""Messages for what users type from numpy and other tools: each names the fix, once."""

import json

import pytest

from gradcli.cli import main


def error_of(capsys, *args):
    rc = main(["grad", *args, "--json"])
    out, _ = capsys.readouterr()
    return rc, json.loads(out)["error"]


@pytest.mark.parametrize("formula, column", [("||x||_3 wrt x", 6), ("||A||_nuc wrt A", 6),
                                             ("‖A‖_op wrt A", 4), ("||x||_0 + 1 wrt x", 6)])
def test_an_unknown_norm_subscript_lists_the_ones_that_exist(capsys, formula, column):
    rc, err = error_of(capsys, formula)
    assert rc == 1 and err["kind"] == "parse" and err["column"] == column
    assert "unknown norm subscript" in err["message"] and "||A||_*" in err["message"]


def test_numpys_norm_with_an_order_points_to_the_subscript(capsys):
    rc, err = error_of(capsys, "norm(A, 2) wrt A")
    assert rc == 1 and "||a||_ord" in err["message"]


def test_a_function_with_no_equivalent_gets_no_contradicting_hint(capsys):
    rc, err = error_of(capsys, "reshape(X) wrt X")
    assert rc == 1 and "not supported" in err["message"] and "--fn" not in err["message"]
    assert err["message"].count("(") <= 1


def test_did_you_mean_ignores_case(capsys):
    rc, err = error_of(capsys, "EXP(x) wrt x")
    assert rc == 1 and "did you mean exp?" in err["message"]


def test_fn_message_has_no_stray_punctuation(capsys):
    rc = main(["grad", "h(x) wrt x", "--fn", "h=h"])
    _, err = capsys.readouterr()
    assert rc == 2 and "builtin; (" not in err and "not an element-wise builtin (one of" in err


@pytest.mark.parametrize("option", ["-s", "-d"])
def test_shape_and_data_options_name_a_bad_symbol_alike(capsys, option):
    rc = main(["grad", "x wrt x", option, "x₁=3"])
    _, err = capsys.readouterr()
    assert rc == 2 and "'x₁' is not a symbol name" in err


@pytest.mark.parametrize("formula", ["h'/xx*x wrt x", "x'/Y*x wrt x, Y"])
def test_a_regrouping_the_operands_do_not_allow_is_not_applied(capsys, formula):
    # found by the token-soup fuzz: the simplifier regrouped (xᵀ ⊘ Y) ⊙ x as (xᵀ ⊙ x) ⊘ Y, whose
    # inner product of a row and a column does not broadcast, and ended in an internal error
    rc = main(["grad", formula, "-s", "x=3", "-s", "xx=2,3", "-s", "Y=2,3", "-s", "h=3", "--random",
               "--check"])
    out, err = capsys.readouterr()
    assert rc == 0 and "internal" not in err and out.count("(ok)") >= 1


def test_check_skips_hidden_folders_and_virtual_environments(capsys, tmp_path):
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "a.gradcli").write_text("x +\n")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "env" / "b.gradcli").write_text("x +\n")
    (tmp_path / "c.gradcli").write_text("x'@x wrt x\n")
    rc = main(["check", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert rc == 0 and out.startswith("1 formula checked")


def test_check_names_a_folder_it_cannot_read(capsys, tmp_path, monkeypatch):
    import os

    (tmp_path / "sub").mkdir()
    real = os.scandir

    def refuse(path="."):  # root reads every folder: refuse one the way the kernel does
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", refuse)
    rc = main(["check", str(tmp_path)])
    _, err = capsys.readouterr()
    assert rc == 2 and "cannot read" in err and "sub" in err and "internal" not in err
