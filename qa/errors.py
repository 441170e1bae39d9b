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


class DiskFull(QAError):
    """The disk filled up while a new index version was written; nothing was published."""


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error nobody translated: what failed, on which path, what to do.

    >>> describe_os_error(PermissionError(13, "Permission denied", "/srv/index"))
    'Cannot use /srv/index: Permission denied. Check that the folder exists and that this user may read and write it.'
    """
    where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    return (f"Cannot use{where}: {what}. Check that the folder exists and that this user may read and write it."
            if where else f"{what}.")
