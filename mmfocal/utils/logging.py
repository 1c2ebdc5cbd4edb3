"""Where the model core's messages go: mmengine's current logger inside an OpenMMLab run, Python's logging
elsewhere."""

import logging
import sys

__all__ = ['log_info']

logger = logging.getLogger('mmfocal')


def log_info(message: str) -> None:
    """Log ``message`` at INFO level.

    Inside a process that has imported mmengine (a runner, a tool) it goes to mmengine's current logger, so it
    lands in the run's log file beside the runner's own lines; otherwise to the ``mmfocal`` logger of Python's
    ``logging``. mmengine is never imported for it.

    Args:
        message: One line of text.
    """
    if 'mmengine.logging' in sys.modules:
        sys.modules['mmengine.logging'].print_log(message, logger='current')
    else:
        logger.info(message)
