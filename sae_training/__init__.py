"""SAE training and evaluation on SAELens, fed from interp activation stores.

Trains sparse autoencoders on activations captured by :mod:`interp.capture`,
saves them in SAELens's on-disk layout and evaluates them on held-out data.
"""
