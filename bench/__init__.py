"""Benchmarks that compare the project's hot loops with plain textbook versions, measured
side by side in one run on the same machine (``python -m bench NAME``)."""
