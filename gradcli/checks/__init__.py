"""`--claim` and `gradcli check`: claims about derivatives checked numerically, check
files.  A client of the Python API (gradcli.api).
"""
