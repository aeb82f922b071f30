"""``amlp``: AMLP attention's linear memory and time, and NAR accuracy on toy seq2seq tasks.

``config.py`` holds the presets and registers the study; ``experiments.py`` measures the saved
tensors and forward+backward time of one attention layer per kind and trains the NAR models,
``figures.py`` draws the efficiency and accuracy figures and ``run.py`` states the claims.
"""
