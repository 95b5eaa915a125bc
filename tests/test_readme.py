"""Every `$ gradcli ...` command in the README runs, and prints exactly what the README shows.

To refresh the README after a deliberate change of output:
    GRADCLI_UPDATE_README=1 python -m pytest tests/test_readme.py
The Python examples (`>>>`) run as doctests.
"""

import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def examples():
    text = README.read_text(encoding="utf-8")
    out = []
    for m in BLOCK.finditer(text):
        lines = m.group(1).splitlines()
        cmds = [i for i, ln in enumerate(lines) if ln.startswith("$ ")]
        for n, i in enumerate(cmds):
            end = cmds[n + 1] if n + 1 < len(cmds) else len(lines)
            out.append((lines[i][2:], "\n".join(lines[i + 1:end])))
    return out


def run(command: str) -> tuple[int, str]:
    argv = shlex.split(command)
    assert argv[0] == "gradcli", "README console examples run gradcli only"
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    res = subprocess.run([sys.executable, "-m", "gradcli", *argv[1:]], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    text = "\n".join(line.rstrip() for line in (res.stdout + res.stderr).rstrip("\n").splitlines())
    return res.returncode, text


@pytest.mark.parametrize("command, shown", examples(), ids=[c for c, _ in examples()])
def test_readme_command_output(command, shown):
    code, text = run(command)
    if os.environ.get("GRADCLI_UPDATE_README"):
        readme = README.read_text(encoding="utf-8")
        old = f"$ {command}\n{shown}" + ("" if shown else "")
        new = f"$ {command}\n{text}" + ("\n" if not shown else "")
        README.write_text(readme.replace(old, new, 1), encoding="utf-8")
        return
    assert text == "\n".join(line.rstrip() for line in shown.splitlines())


def test_readme_has_examples():
    assert len(examples()) >= 8


def test_readme_python_examples():
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_readme_setup_commands_are_what_ci_runs():
    readme = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    setup = re.findall(r"```sh\n(.*?)\n```", readme, re.S)[:2]
    assert len(setup) == 2
    for command in setup:
        assert command.strip() in ci
