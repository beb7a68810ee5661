"""Pure loss functions, one file per family."""
