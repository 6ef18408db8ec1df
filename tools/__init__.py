"""One-off tools that are neither served nor part of training (e.g. converting fer's Keras weights)."""
