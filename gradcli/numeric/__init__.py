"""Numbers: the evaluator, --emit, data files and streams, row blocks, backends, random
draws, finite differences.  Imports calculus and language.
"""
