"""``bivit``: a full-precision ViT teacher and its binary students (He et al. 2023).

``config.py`` holds the presets and registers the study; ``experiments.py`` trains the teacher
and the binary variants on digits and generated shapes and packs the SAB student to bits,
``figures.py`` draws the accuracy, attention-map and size figures and ``run.py`` states the
claims.
"""
