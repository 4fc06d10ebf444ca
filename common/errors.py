"""Errors a user can cause (missing data, offline without weights, bad input).

They are raised anywhere in the project and turned into one clear line by
:func:`common.cli.run`, instead of a traceback.
"""


class UserError(RuntimeError):
    """A problem the user can fix; the message names the file and the fix."""


class DataError(UserError):
    """A dataset is missing, incomplete or corrupt."""


class WeightsError(UserError):
    """Pretrained weights are missing and cannot be downloaded."""
