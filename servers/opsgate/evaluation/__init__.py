"""`opsgate eval`: run investigations over incident scenarios and score them (see `runner`)."""
