"""Lazy, quiet TensorFlow import. The only place that imports TensorFlow for the first time."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from .interrupts import deferred

_TF: ModuleType | None = None


def tensorflow() -> ModuleType:
    """Import TensorFlow once, with its C++ log lines kept off the user's stderr.

    ``TF_CPP_MIN_LOG_LEVEL`` must be set before the import, and even then a few lines
    (CUDA probing, absl's pre-init warning, XLA start-up) are written straight to file
    descriptor 2. When our stderr *is* descriptor 2, we point descriptor 2 at /dev/null
    for the rest of the process and keep Python's ``sys.stderr`` on a duplicate of the
    real one, so our own messages still arrive and TensorFlow's do not.

    Ctrl-C during the import (about two seconds) is held back until it is complete: an
    import cut short leaves TensorFlow half-initialized for the rest of the process.
    """
    global _TF
    if _TF is not None:
        return _TF
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    _silence_native_stderr()
    with deferred():
        with _without_eager_keras():
            import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        tf.autograph.set_verbosity(0)
        _TF = tf
    return tf


@contextmanager
def _without_eager_keras() -> Iterator[None]:
    """Skip the Keras import that ``import tensorflow`` does eagerly: start-up pays for it, nothing uses it.

    TensorFlow's ``__init__`` imports ``keras.src.optimizers`` up front "so that
    registrations happen", inside ``try/except ImportError``. With TF_USE_LEGACY_KERAS set
    it tries ``tf_keras`` instead, which is not installed, so nothing is imported. Keras 3
    itself is imported directly (``import keras``) by the code that needs an optimizer, and
    it does not read this variable. We never use ``tf.keras``. Only when ``tf_keras`` is
    absent, and only for the import itself.
    """
    if "TF_USE_LEGACY_KERAS" in os.environ or importlib.util.find_spec("tf_keras") is not None:
        yield
        return
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    try:
        yield
    finally:
        del os.environ["TF_USE_LEGACY_KERAS"]


def _silence_native_stderr() -> None:
    if os.environ.get("AUTODIFF_TF_LOGS"):
        return
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests capture it in memory): nothing native to hide
    sys.stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")


def loaded() -> bool:
    """True once TensorFlow has been imported by this process (by us or anyone)."""
    return "tensorflow" in sys.modules


@contextmanager
def without_grappler() -> Iterator[None]:
    """Call traced functions without TensorFlow's graph optimizer (Grappler), then restore it.

    Two uses. Newton's iteration is traced once per run and called a few dozen times, so
    the time Grappler takes when the function is first called is not won back: the graph is
    already lean, and many starts run no slower without it. And the Keras loops in graph
    mode (not XLA): with Grappler, a freshly compiled loop on a loaded machine can end
    elsewhere than the same loop run eagerly or with XLA, since its rewrites let the
    optimizer's reads and writes race; without Grappler the three agree.

    The setting is part of the key under which TensorFlow keeps a function's instantiation,
    so it must hold for every call of the function, and be restored exactly, byte for byte,
    or functions instantiated before (the warm server's cached loops) would be instantiated
    again. ``tf.config.optimizer.set_experimental_options`` cannot restore it exactly (it
    leaves an empty ``rewrite_options`` behind) and is process-wide; the per-thread call
    options below can, but are not public API: if they are not there, Grappler stays on.
    """
    tensorflow()
    try:
        from tensorflow.core.protobuf import config_pb2
        from tensorflow.python.eager import context

        ctx = context.context()
        saved = ctx.function_call_options
        config = config_pb2.ConfigProto.FromString(saved.config_proto_serialized)
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        ctx.function_call_options = context.FunctionCallOptions(saved.executor_type, config)
    except (ImportError, AttributeError, TypeError):
        yield
        return
    try:
        yield
    finally:
        ctx.function_call_options = saved


def grappler_free(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a ``tf.function``), every call of it made under :func:`without_grappler`."""

    def call(*args: Any) -> Any:
        with without_grappler():
            return function(*args)

    return call


def resident_bytes() -> int:
    """This process's resident memory in bytes (Linux), or 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
