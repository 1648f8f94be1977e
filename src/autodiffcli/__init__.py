"""autodiff: differentiate and minimize math expressions with TensorFlow."""

__version__ = "0.1.0"
