"""Data generators (explicit seed or `torch.Generator`) and in-memory loaders.

* `perceptrons.data.digits`: scikit-learn's bundled 8×8 handwritten digits, split and
  standardised (`load_digits_split`).
* `perceptrons.data.loader`: `TensorLoader`, seeded mini-batches with a restorable position.
* `perceptrons.data.lie`: the synthetic tasks of Lie Neurons (arXiv 2310.04521), with exact
  analytic targets: sl(3)/sp(4) invariant regression (`invariant_regression`), sl(3)
  equivariant regression (`equivariant_regression`), the so(3) BCH task (`bch_regression`,
  `bch_series`, `rotation_log_error`) and the adjoint action used to build conjugated test
  sets (`conjugate`, `random_conjugation`).
* `perceptrons.data.platonic`: Lie Neurons' Platonic-solid classification from homographies
  (`platonic_homographies`, `platonic_solid_homographies`) and its rotated-camera test set
  (`random_rotations`, `rotate_camera`).
* `perceptrons.data.sequences`: seq2seq toy tasks for AMLP (arXiv 2310.09512; our choice of
  tasks, as the paper's benchmarks are too large for a CPU) with padding and a shared token
  convention (`PAD`, `MASK`): `copy_task`, `reverse_task`, `sort_task`, `histogram_task`, and
  the monotone toy `translation_task` through a random `Lexicon` (`make_lexicon`);
  `make_sequence_task` picks one by name.

Click-through-rate files (readers, encoders, the synthetic generator) are a domain of their
own: see `perceptrons.ctr`.
"""

from perceptrons.data.digits import DigitsSplit, load_digits_split
from perceptrons.data.lie import (
    bch_regression,
    bch_series,
    conjugate,
    equivariant_regression,
    equivariant_target,
    invariant_regression,
    invariant_target,
    random_conjugation,
    rotation_exp,
    rotation_log,
    rotation_log_error,
)
from perceptrons.data.loader import TensorLoader
from perceptrons.data.platonic import (
    PLATONIC_CENTER,
    PLATONIC_CLASSES,
    PlatonicSolidHomographies,
    platonic_homographies,
    platonic_solid_homographies,
    random_rotations,
    rotate_camera,
)
from perceptrons.data.sequences import (
    MASK,
    NUM_SPECIAL_TOKENS,
    PAD,
    SEQUENCE_TASKS,
    Lexicon,
    Seq2SeqData,
    copy_task,
    histogram_task,
    make_lexicon,
    make_sequence_task,
    reverse_task,
    sort_task,
    translation_task,
)

__all__ = [
    "MASK",
    "NUM_SPECIAL_TOKENS",
    "PAD",
    "SEQUENCE_TASKS",
    "Lexicon",
    "Seq2SeqData",
    "copy_task",
    "histogram_task",
    "make_lexicon",
    "make_sequence_task",
    "reverse_task",
    "sort_task",
    "translation_task",
    "PLATONIC_CENTER",
    "PLATONIC_CLASSES",
    "DigitsSplit",
    "PlatonicSolidHomographies",
    "TensorLoader",
    "bch_regression",
    "bch_series",
    "conjugate",
    "equivariant_regression",
    "equivariant_target",
    "invariant_regression",
    "invariant_target",
    "load_digits_split",
    "platonic_homographies",
    "platonic_solid_homographies",
    "random_conjugation",
    "random_rotations",
    "rotate_camera",
    "rotation_exp",
    "rotation_log",
    "rotation_log_error",
]
