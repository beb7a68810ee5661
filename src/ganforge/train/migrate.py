"""Every migration of old checkpoint formats, in one place.

``FORMAT_VERSION`` is written into each checkpoint's state.json. When the format changes, bump
it and add a function ``MIGRATIONS[old] = f(state) -> state`` that upgrades a version-``old``
state by one version; loading applies them in order. A checkpoint from a newer ganforge is
refused with a clear message instead of being misread.
"""

from __future__ import annotations

from ganforge.errors import GanforgeError

FORMAT_VERSION = 1

# old version -> function upgrading a state dict to old + 1
MIGRATIONS: dict = {}


def migrate(state: dict, where: str = "checkpoint") -> dict:
    version = state.get("format_version")
    if not isinstance(version, int):
        raise GanforgeError(f"{where} has no format_version; it was not written by ganforge")
    if version > FORMAT_VERSION:
        raise GanforgeError(f"{where} has format version {version}, newer than this ganforge "
                            f"supports ({FORMAT_VERSION}); upgrade ganforge to load it")
    while version < FORMAT_VERSION:
        state = MIGRATIONS[version](state)
        version += 1
        state["format_version"] = version
    return state
