"""``deq-nngp``: the DEQ NNGP kernel of Gao et al. (2023) against finite-width DEQs.

``config.py`` holds the presets and registers the study; ``experiments.py`` simulates many
independent finite-width DEQs at initialisation (`perceptrons.theory.deq_montecarlo`) and
compares them with the kernel (`perceptrons.theory.kernels.deq_kernel`), ``figures.py`` draws
the residual, heat-map, error, lambda_min and accuracy figures and ``run.py`` states the claims.
"""
