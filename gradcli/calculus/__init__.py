"""Calculus on the typed graph: reverse mode, Jacobians and Hessians read off a
vector-Jacobian product, index notation, the --steps derivation.  Imports the
language only.
"""
