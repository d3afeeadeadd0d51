"""Circuit discovery: patching, attribution patching, ACDC-style pruning, logit
attribution and SAE-code head finding, scored against circuits known in advance.
"""
