"""Model loading: the registry, the model contract and the hooked model classes.

See :mod:`interp.models.contract` for the few things downstream code may use.
"""
