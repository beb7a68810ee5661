"""`ganforge lab`: an interactive 2-D GAN playground in the browser, trained by ganforge's own loop.

:mod:`ganforge.lab.session` holds the session (settings -> config -> method and training loop,
stepped one iteration at a time, drawn between steps); :mod:`ganforge.lab.server` runs it in one
worker thread and serves the page.
"""

from ganforge.lab.session import LabSession, LabSettings

__all__ = ["LabSession", "LabSettings"]
