"""Domain errors. Each message says what happened and what to do; only the CLI/UI translate them."""


class QAError(Exception):
    """Base class for every error the package raises on purpose."""


class InputError(QAError):
    """The text, file or question given to us cannot be used (empty, binary, too big, ...)."""


class ModelError(QAError):
    """The embedding model could not be loaded."""


class IndexMissing(QAError):
    """No index has been built (or published) yet."""


class IndexCorrupt(QAError):
    """An index version on disk fails its manifest check."""


class BuildInProgress(QAError):
    """Another rebuild holds the lock."""


class NotAllowed(QAError):
    """The action needs the admin password."""
