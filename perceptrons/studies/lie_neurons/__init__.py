"""``lie-neurons``: Lie Neurons against MLP baselines on synthetic tasks (Lin, Zhu & Ghaffari).

``config.py`` holds the presets and registers the study; ``experiments.py`` trains and
measures the models of each task (sl(3) invariant and equivariant regression, Platonic solids,
sp(4), so(3) BCH), ``figures.py`` draws the MSE, error-histogram and Platonic figures and
``run.py`` states the claims.
"""
