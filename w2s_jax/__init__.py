"""w2s_jax: weak-to-strong generalization experiments in JAX/Flax.

The Python API (w2s_jax/api.py): load_config, run, load_results, predictions.
"""

__version__ = "0.1.0"

API = ("load_config", "run", "load_results", "predictions")


def __getattr__(name):  # the API imports jax and the models: only when asked for
  if name in API:
    from w2s_jax import api
    return getattr(api, name)
  raise AttributeError(f"module 'w2s_jax' has no attribute {name!r}")
