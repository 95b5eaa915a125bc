import os
import sys
from pathlib import Path

from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

# `HYPOTHESIS_PROFILE=slow python -m pytest` runs the property tests over thousands of examples.
settings.register_profile("slow", max_examples=5000, deadline=None)
# CI (CI=true) replays a fixed set of examples: a red build then means a change broke something,
# not that this run's dice found an old bug; the random exploration runs in the slow campaigns.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
elif os.environ.get("CI"):
    settings.load_profile("ci")

# Every JSON document the tests make is validated against the published schema at the end of the
# session (tests/json_outputs.py, tests/test_json_schema.py).
_CURRENT = {"test": ""}


def pytest_configure(config):
    import json_outputs

    json_outputs.install(lambda: _CURRENT["test"])


def pytest_runtest_setup(item):
    _CURRENT["test"] = item.nodeid


def pytest_collection_modifyitems(items):
    """The session-wide schema check runs last, after every test that made JSON."""
    last = [i for i in items if i.name == "test_every_json_output_of_the_session_validates"]
    items[:] = [i for i in items if i not in last] + last
