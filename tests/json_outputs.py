"""Every JSON document the test-suite's gradcli runs print, kept for test_json_schema.

Why a collector: the schema promises the shape of *every* --json output, so the test must see
every output the tests provoke (grad, hess, shape, check, errors, stdin, steps, claims...), not a
list of examples that would age.  capsys reads and gradcli subprocesses are recorded here."""

from __future__ import annotations

import json
import subprocess

SEEN: list[tuple[str, dict]] = []  # (where, document)


def _record(where: str, text) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and ({"derivatives", "results", "error"} & set(doc)):
                SEEN.append((where, doc))


def install(current_test) -> None:
    """Wrap capsys's readouterr and subprocess.run (for runs of gradcli) once per session."""
    from _pytest.capture import CaptureFixture

    read = CaptureFixture.readouterr

    def readouterr(self):
        result = read(self)
        _record(current_test(), result.out)
        return result
    CaptureFixture.readouterr = readouterr

    run = subprocess.run

    def recording_run(*args, **kwargs):
        done = run(*args, **kwargs)
        cmd = args[0] if args else kwargs.get("args")
        if "gradcli" in " ".join(map(str, cmd)) if isinstance(cmd, (list, tuple)) else "gradcli" in str(cmd):
            _record(current_test(), done.stdout)
        return done
    subprocess.run = recording_run
