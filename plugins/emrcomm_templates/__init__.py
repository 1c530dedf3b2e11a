"""emrcomm built-in plugin: templates.

Renders a request in the patient's language (English or Quebec French) from declared,
type-checked variables, in a Jinja sandbox; clinics add or replace templates in their folder.
"""

from __future__ import annotations

from emrcomm_templates.plugin import Plugin

__all__ = ["Plugin"]
