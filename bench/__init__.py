"""gradcli benchmarks: `python -m bench [--quick]` (see run.py)."""
