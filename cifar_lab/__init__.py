"""cifar-lab: datasets, models, Adaptive Sparse Training and one GPU-minded training loop for the book."""
__version__ = "0.1.0"
