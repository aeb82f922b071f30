"""``emofm-ctr``: EMOFM (our reconstruction) and the CTR baselines against a known oracle.

``config.py`` holds the presets and registers the study; ``experiments.py`` trains and tests
every model on the synthetic planted-interaction task (and its interactions-off control),
``figures.py`` draws the AUC, ablation and calibration figures and ``run.py`` states the claims.
"""
