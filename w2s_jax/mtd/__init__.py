"""Measurement tampering detection (MTD) on the pipeline's machinery.

The strong model is fine-tuned to predict every measurement and their conjunction (one head
each, read at the last token) on trusted and untrusted training examples; the detection
methods (methods.py) score the untrusted test examples whose measurements are all
positive, and the metric is the AUROC of real against fake positives (data/mtd.py).
Every model and probe is a cached phase (phases.py); pipeline.run writes results.json.
"""
