"""The language: formula text → syntax → shapes → the typed, hash-consed graph, the
operators (one record each) and their notation.  Imports nothing above it.
"""
