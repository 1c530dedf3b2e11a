"""The exceptions emrcomm raises, all under EmrcommError::

    EmrcommError
    ├── ConfigError        the config file or a plugin's settings are wrong   (CLI exit 2)
    ├── RequestError       a request is malformed: nothing was sent or filed  (CLI exit 2)
    │   └── RenderError    the template or its variables do not fit the request
    └── PluginError        a plugin could not be loaded or broke the contract (CLI exit 2)
"""

from __future__ import annotations


class EmrcommError(Exception):
    """Base class of every error emrcomm raises on purpose."""


class ConfigError(EmrcommError):
    """The configuration is wrong. The message names the file, the path and what was expected."""


class RequestError(EmrcommError):
    """A request cannot be processed. The message names the field and what to do."""


class RenderError(RequestError):
    """A template cannot be rendered for this request."""


class PluginError(EmrcommError):
    """A plugin failed to load or broke the hook contract. The message names the plugin."""
