"""The methods: Keras loops, Newton, SciPy and TFP quasi-Newton, multistart, the verdict."""
