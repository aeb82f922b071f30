"""The neural-tangents side of the kernel comparison; runs in a separate, throwaway environment.

neural-tangents 0.6.5 (its latest release) imports only with an old JAX and TensorFlow; what
worked on 2026-11-27 (Python 3.11, CPU)::

    python3.11 -m venv /tmp/ntvenv
    /tmp/ntvenv/bin/pip install neural-tangents==0.6.5 jax==0.4.23 jaxlib==0.4.23 \\
        "numpy<2" tf2jax==0.3.6 "tensorflow==2.15.*"

(with the current JAX 0.10 it fails at import: ``cannot import name 'Jaxpr' from 'jax.core'``).
This file never imports perceptrons, and perceptrons never imports it:

    /tmp/ntvenv/bin/python benchmarks/neural_tangents_side.py reference \\
        > tests/theory/data/neural_tangents_reference.json
    /tmp/ntvenv/bin/python benchmarks/neural_tangents_side.py time --n 2000 --depth 10

``reference`` prints NNGP and NTK values of five architectures on fixed inputs (the test
``test_values_match_neural_tangents`` compares ours with them); ``time`` computes the
benchmark network's kernels (`benchmarks/kernels.py`) and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

WIDTH = 64  # hidden width; only the standard-parameterisation NTK depends on it


def reference_inputs() -> np.ndarray:
    """x[i, j] = sin(1 + 1.3 i + 0.7 j), shape (4, 3); the test builds the same array."""
    i, j = np.meshgrid(np.arange(4), np.arange(3), indexing="ij")
    return np.sin(1 + 1.3 * i + 0.7 * j)


def reference_cases() -> dict:
    w, std = WIDTH, "standard"
    residual_block = stax.serial(
        stax.Relu(), stax.Dense(w, 1.0, 0.1), stax.Erf(), stax.Dense(w, 0.7)
    )
    return {
        "relu_ntk": stax.serial(
            stax.Dense(w, 1.4, 0.1),
            stax.Relu(),
            stax.Dense(w, 1.4, 0.1),
            stax.Relu(),
            stax.Dense(1, 1.0),
        ),
        "erf_abrelu": stax.serial(
            stax.Dense(w, 1.2, 0.3),
            stax.Erf(),
            stax.Dense(w, 0.9),
            stax.ABRelu(-0.5, 1.5),
            stax.Dense(1, 1.1, 0.2),
        ),
        "leaky_sin_gelu": stax.serial(
            stax.Dense(w, 1.0, 0.2),
            stax.LeakyRelu(0.1),
            stax.Dense(w, 1.1, 0.1),
            stax.Sin(),
            stax.Dense(w, 0.8, 0.05),
            stax.Gelu(),
            stax.Dense(1, 1.0),
        ),
        "residual": stax.serial(
            stax.Dense(w, 1.0, 0.1),
            stax.FanOut(2),
            stax.parallel(residual_block, stax.Identity()),
            stax.FanInSum(),
            stax.Relu(),
            stax.Dense(1, 1.0),
        ),
        "standard_relu_erf": stax.serial(
            stax.Dense(w, 1.4, 0.1, parameterization=std),
            stax.Relu(),
            stax.Dense(w, 1.3, None, parameterization=std),
            stax.Erf(),
            stax.Dense(1, 1.0, 0.2, parameterization=std),
        ),
    }


def reference() -> None:
    x = jnp.asarray(reference_inputs())
    out = {"neural_tangents": nt.__version__, "jax": jax.__version__, "width": WIDTH}
    for name, (_, _, kernel_fn) in reference_cases().items():
        k = kernel_fn(x, None, ("nngp", "ntk"))
        out[name] = {"nngp": np.asarray(k.nngp).tolist(), "ntk": np.asarray(k.ntk).tolist()}
    print(json.dumps(out, indent=1))


def timing(n: int, depth: int, seed: int, batch_size: int) -> None:
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, 1.4, 0.1), stax.Relu()]
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, 1.0))
    kernel_fn = jax.jit(kernel_fn, static_argnames="get")
    if batch_size:
        kernel_fn = nt.batch(kernel_fn, batch_size=batch_size)
    x = jnp.asarray(np.random.default_rng(seed).standard_normal((n, 64)))
    seconds = []
    for _ in range(2):  # the first call includes compilation
        start = time.perf_counter()
        k = kernel_fn(x, None, ("nngp", "ntk"))
        k.ntk.block_until_ready()
        seconds.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "n": n,
                "depth": depth,
                "first_call_seconds": seconds[0],
                "seconds": seconds[1],
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "nngp_mean_diag": float(jnp.diagonal(k.nngp).mean()),
                "ntk_mean_diag": float(jnp.diagonal(k.ntk).mean()),
                "neural_tangents": nt.__version__,
                "jax": jax.__version__,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("reference")
    t = sub.add_parser("time")
    t.add_argument("--n", type=int, default=2000)
    t.add_argument("--depth", type=int, default=10)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--batch-size", type=int, default=0, help="nt.batch size; 0: no batching")
    args = parser.parse_args()
    if args.command == "reference":
        reference()
    else:
        timing(args.n, args.depth, args.seed, args.batch_size)


if __name__ == "__main__":
    main()
