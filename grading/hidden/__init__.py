"""Hidden checks, one module per practical; left out of the student release."""
