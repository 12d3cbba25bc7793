"""Errors shared by the stages of the pipeline (dataset writing, training)."""

from __future__ import annotations

import errno


class DiskFullError(OSError):
    """ENOSPC while writing a folder; the message names the folder and what to do.

    Raised as ``DiskFullError(errno.ENOSPC, message)``; ``str()`` is the message alone (no
    ``[Errno 28]`` prefix), so the command line prints it as it is.
    """

    def __str__(self) -> str:
        return self.strerror if self.strerror else super().__str__()


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` reports a full disk or quota: ENOSPC / EDQUOT, or h5py's text for them (h5py
    raises a plain OSError without an errno, its message ending ``'No space left on device'``)."""
    if isinstance(err, DiskFullError):
        return True
    return (getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
            or "No space left on device" in str(err) or "Disk quota exceeded" in str(err))
