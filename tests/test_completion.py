"""Shell completion: the script for each shell, and what completing answers, through a real
process with ``_AUTODIFF_COMPLETE`` set, as the shells call it (TensorFlow never imported)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import invoke


@pytest.mark.parametrize(
    ("shell", "markers"),
    [
        ("bash", ["_AUTODIFF_COMPLETE=bash_complete", "complete -o nosort -F _autodiff_completion autodiff"]),
        ("zsh", ["#compdef autodiff", "_AUTODIFF_COMPLETE=zsh_complete"]),
        ("fish", ["_AUTODIFF_COMPLETE=fish_complete", "complete --no-files --command autodiff"]),
    ],
)
def test_completion_prints_clicks_script_for_each_shell(shell, markers):
    result = invoke("completion", shell)
    assert (result.exit_code, result.stderr) == (0, "")
    for marker in markers:
        assert marker in result.stdout


def test_an_unknown_shell_is_refused():
    result = invoke("completion", "tcsh")
    assert result.exit_code == 2
    assert result.stderr == "Error: Invalid value for 'SHELL': 'tcsh' is not one of 'bash', 'zsh', 'fish'.\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """This checkout's code, and a TensorFlow whose import fails: completing must not load it."""
    fake = tmp_path / "fake-site" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('completion must not import TensorFlow')\n")
    paths = [str(fake.parent), *(os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def complete(env: dict[str, str], shell: str, words: str, cword: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "autodiffcli"],
        env={**env, "_AUTODIFF_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": cword},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    return proc.stdout.splitlines()


def values(lines: list[str]) -> list[str]:
    return [line.split(",", 1)[1] for line in lines]


def test_completes_commands(env):
    commands = ["completion", "fit", "grad", "maximize", "minimize", "server", "tour"]
    assert values(complete(env, "bash", "autodiff ", "1")) == commands
    assert values(complete(env, "bash", "autodiff mi", "1")) == ["minimize"]


def test_completes_options(env):
    grad = values(complete(env, "bash", "autodiff grad --", "2"))
    assert {"--at", "--at-file", "--max-lines", "--wrt", "--watch", "--order", "--format", "--dtype"} <= set(grad)
    assert values(complete(env, "bash", "autodiff minimize --s", "2")) == [
        "--steps",
        "--starts",
        "--subject-to",
        "--seed",
        "--style",
    ]


def test_completes_format_dtype_style_and_optimizer_names(env):
    assert values(complete(env, "bash", "autodiff grad --format ", "3")) == ["table", "json", "plain"]
    assert values(complete(env, "bash", "autodiff grad --dtype ", "3")) == ["float32", "float64"]
    assert values(complete(env, "bash", "autodiff minimize --dtype float6", "3")) == ["float64"]
    assert values(complete(env, "bash", "autodiff minimize --style ", "3")) == ["tape", "minimize"]
    assert values(complete(env, "bash", "autodiff minimize --opt ad", "3")) == [
        "adadelta",
        "adafactor",
        "adagrad",
        "adam",
        "adamax",
        "adamw",
    ]
    assert values(complete(env, "bash", "autodiff maximize --opt n", "3")) == ["nadam", "newton"]
    assert values(complete(env, "bash", "autodiff minimize --opt lb", "3")) == ["lbfgs"]


def test_zsh_and_fish_get_their_own_formats(env):
    assert complete(env, "zsh", "autodiff minimize --opt rms", "3") == ["plain", "rmsprop", "RMSprop"]
    assert complete(env, "fish", "autodiff minimize --opt rms", "rms") == ["plain,rmsprop\tRMSprop"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_sources_the_script_and_completes(env, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "autodiff").write_text(f'#!/bin/sh\nexec {sys.executable} -m autodiffcli "$@"\n')
    (bin_dir / "autodiff").chmod(0o755)
    script = invoke("completion", "bash").stdout
    probe = 'COMP_WORDS=(autodiff grad --format j); COMP_CWORD=3; _autodiff_completion autodiff; echo "${COMPREPLY[@]}"'
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", f"{script}\n{probe}"],
        env={**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "json\n", "")
