"""w2s_jax: weak-to-strong generalization experiments in JAX/Flax.

The Python API (w2s_jax/api.py): load_config, run, load_results, predictions, diagnostics.
"""

from w2s_jax.api import diagnostics, load_config, load_results, predictions, run

__version__ = "0.1.0"

__all__ = ["diagnostics", "load_config", "load_results", "predictions", "run"]
