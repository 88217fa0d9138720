"""Each ``inferperf`` command's workflow, one module per command, each with ``run(args) -> exit code``.

``inferperf.cli`` parses the command line and calls the chosen module's ``run``; the modules read
runs (``inferperf.record``), judge them (``inferperf.analysis``) and write what was asked, and
``common`` holds what they share: the exit codes, ``UsageError`` (one line, exit 2), ``-k``
selection, output files checked before the work, and ``--metric`` applied to loaded runs.

``ab`` and ``detection-power --ab`` also run fresh pytest processes (``inferperf.ab``). No module
here imports torch, TensorFlow or DALI.
"""

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input or usage: printed as one line, exit 2."""
