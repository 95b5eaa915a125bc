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
