"""The plugin contract: what a plugin implements (spec), the objects it provides and receives
(contract, context), and the manager through which the host loads plugins and calls every hook.

A plugin needs ``hookimpl`` and the names exported by ``emrcomm``; this package is where they
are defined.
"""

from __future__ import annotations

import pluggy

NAME = "emrcomm"
hookimpl = pluggy.HookimplMarker(NAME)
"""Mark a plugin function or method as a hook implementation: ``@hookimpl``."""
hookspec = pluggy.HookspecMarker(NAME)

__all__ = ["NAME", "hookimpl", "hookspec"]
