"""albert-edge: ALBERT from a checkpoint to a phone.

``albert_edge.load_default()`` returns the shipped tweet-sentiment model as a
:class:`~albert_edge.classifier.TextClassifier`; ``classify(texts)`` gives a label and class
probabilities per text. Importing the package itself stays cheap (torch loads on first use).
"""

__version__ = "0.1.0"

__all__ = ["TextClassifier", "__version__", "load_default"]


def __getattr__(name: str):  # PEP 562: load torch only when these are used
    if name in ("load_default", "TextClassifier"):
        from albert_edge import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'albert_edge' has no attribute {name!r}")
