"""Adaptive Sparse Training (the "Sundew" gate of the AST paper's repository): significance scores, the
gate's PI controller and its gain sets, a simulator to choose gains on, and the AST figures (`plots`).

Per training batch: (1) score every sample without gradients (`score`), (2) gate it against the threshold,
(3) fall back to a few random samples when nothing passes, (4) update the threshold with the PI controller
(`controller`), (5) train on the active samples only. Steps 2, 3 and 5 are the training step's
(`cifar_lab.engine.sparse_step`); this package never imports the engine.

The selections the AST chapter compares the gate with live here too: the AST paper's repository's own gate
(`seed_gate`, with an energy budget and `controller.CumulativeRateController`) and Selective Backprop
(`selective_backprop`, Jiang et al. 2019)."""
