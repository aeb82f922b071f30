"""``mlp-digits``: the template study (an MLP on scikit-learn's digits, checked against sklearn).

``config.py`` holds the presets and registers the study; ``experiments.py`` trains the two
models, ``figures.py`` draws the learning curves and ``run.py`` states the claims.
"""
