"""The errors a user can cause: each names the file, field or value and what is accepted.

Every one is an ``AlbertEdgeError``, which ``albert-edge`` prints as one line (exit code 2);
anything else is a bug and keeps its traceback. This module imports nothing, so every layer of
the package can raise these, and the modules that raise one also export it under its old
home (``albert_edge.config.ConfigError`` is this ``ConfigError``).
"""


class AlbertEdgeError(Exception):
    """Something the user can fix; the message says what and how."""


class ConfigError(AlbertEdgeError, ValueError):
    """A configuration value is invalid; the message names the field and what is accepted."""


class TokenizerError(AlbertEdgeError, ValueError):
    """A tokenizer file, option or input that cannot be used; the message says what is accepted."""


class CheckpointError(AlbertEdgeError, ValueError):
    """A checkpoint cannot be read or does not fit its config; the message names the file."""


class DataError(AlbertEdgeError, ValueError):
    """A data file cannot be used; the message names the file, rows and what is accepted."""


class CorpusError(AlbertEdgeError, ValueError):
    """A corpus that is missing or malformed; the message names the file and how to fix it."""


class PretrainingDataError(AlbertEdgeError, ValueError):
    """A masking setting, vocabulary or input document that cannot be used; says what is accepted."""


class MetricsError(AlbertEdgeError, ValueError):
    """Inputs a metric cannot be computed on; the message names the argument and the value."""


class TrainingError(AlbertEdgeError, ValueError):
    """Training arguments, data or an output folder that cannot be used; the message says why."""


class ExitError(AlbertEdgeError, ValueError):
    """Early exits: heads or rules that cannot be trained, read or applied as asked."""


class BundleError(AlbertEdgeError, ValueError):
    """A bundle that cannot be written or read; the message names the file, field and value."""


class ProgramError(AlbertEdgeError, ValueError):
    """A ``.pte`` file cannot be used: missing, not a program, truncated, corrupt, or not ours."""


class RuntimeInputError(AlbertEdgeError, ValueError):
    """An input a program would reject; the message names the input, position and value."""


class ProfilingError(AlbertEdgeError, RuntimeError):
    """ETDump could not be produced or read (the runtime was built without event tracing)."""


class BusyError(AlbertEdgeError, RuntimeError):
    """A folder another albert-edge run is writing (``_io.folder_lock``); the message names both."""


class HarnessError(AlbertEdgeError, RuntimeError):
    """A comparison cannot run: bad settings, a model that does not match the bundle, or a
    worker process that failed (its error and log are quoted)."""
