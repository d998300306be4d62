"""Benchmarks of sparktrain against the library alone and against its peers.

Run the harness with ``python -m benchmarks``; the single scripts in this
folder run as ``python benchmarks/NAME.py``.
"""
