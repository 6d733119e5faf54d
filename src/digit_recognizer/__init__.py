"""digit-recognizer: a DVC pipeline for Kaggle's Digit Recognizer (MNIST as CSV)."""

__version__ = "0.1.0"
