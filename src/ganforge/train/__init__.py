"""The one training loop, checkpoints (with format migrations) and EMA."""
