"""The errors a user can cause: each names the file, field or value and what is accepted.

The CLI prints these as one line; anything else is a bug and keeps its traceback.
"""

from albert_edge.bundle import BundleError
from albert_edge.checkpoint import CheckpointError
from albert_edge.config import ConfigError
from albert_edge.corpora import CorpusError
from albert_edge.datasets import DataError
from albert_edge.harness import HarnessError
from albert_edge.metrics import MetricsError
from albert_edge.pretraining_data import PretrainingDataError
from albert_edge.runtime import ProgramError, RuntimeInputError
from albert_edge.tokenizer import TokenizerError
from albert_edge.training import TrainingError

USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    CheckpointError,
    TokenizerError,
    BundleError,
    ProgramError,
    RuntimeInputError,
    DataError,
    TrainingError,
    PretrainingDataError,
    MetricsError,
    CorpusError,
    HarnessError,
)
