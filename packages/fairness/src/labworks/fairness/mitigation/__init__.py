"""Mitigation: pre- (Reweighing), in- (reductions, torch surrogates) and post-processing (thresholds)."""
