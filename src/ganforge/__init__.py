"""ganforge: train, evaluate and understand generative image models.

The Python API mirrors the command line::

    import ganforge
    cfg = ganforge.load_config("toy-ring", overrides=["train.steps=2000"])
    run_dir = ganforge.train(cfg, out="runs/ring")
    images = ganforge.load_run(run_dir).sample(64, seed=0)
"""

import ganforge.methods  # noqa: E402,F401  (registers every method's options with the config)
from ganforge.api import evaluate, load_run, train  # noqa: E402
from ganforge.config import load_config  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.version import __version__  # noqa: E402

__all__ = ["__version__", "GanforgeError", "evaluate", "load_config", "load_run", "train"]
