"""Datasets: text corpora and image sets turned into token contexts or pixel batches.

:mod:`interp.datasets.text` packs corpora into fixed-length token contexts;
:mod:`interp.datasets.images` loads image sets and preprocesses them for a ViT;
:mod:`interp.datasets.splits` assigns items to train / held-out splits by a hash
of a stable key.
"""
