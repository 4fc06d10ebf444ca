"""Public checks, one module per practical; students run them with ``python -m grading check``."""
