"""``scaling-limits``: Li & Nica 2023 (arXiv:2310.12079), finite networks vs SDE/ODE limits.

``config.py`` holds the presets and registers the study; ``experiments.py`` simulates real
networks at initialisation (`perceptrons.theory.montecarlo`) and the limits
(`perceptrons.theory.limits`), ``figures.py`` draws the trajectory, final-correlation, KS and
q-distribution figures and ``run.py`` states the claims.
"""
