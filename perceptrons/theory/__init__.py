"""Theory: infinite-width kernels, scaling limits, Monte Carlo estimators (later issues)."""
