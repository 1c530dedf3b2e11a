"""The exceptions emrcomm raises, all under EmrcommError::

    EmrcommError
    ├── ConfigError        the config file or a plugin's settings are wrong   (CLI exit 2)
    ├── RequestError       a request is malformed: nothing was sent or filed  (CLI exit 2)
    │   ├── RenderError    the template or its variables do not fit the request
    │   ├── RequestConflict its id was used before for a request that asked for something else
    │   └── SubjectMismatch its subject's reference and identifier are not one patient
    ├── RecipientRefused   a directory knows the patient, who must not be messaged (a finding, not an error)
    ├── PluginError        a plugin could not be loaded or broke the contract (CLI exit 2)
    │   └── PluginUnavailable a server it needs cannot answer now: try again (API 503, CLI exit 4)
    └── ProbeFailed        a server a plugin talks to did not answer as it should (``emrcomm doctor``)
"""

from __future__ import annotations


class EmrcommError(Exception):
    """Base class of every error emrcomm raises on purpose."""


class ConfigError(EmrcommError):
    """The configuration is wrong. The message names the file, the path and what was expected."""


class RequestError(EmrcommError):
    """A request cannot be processed. The message names the field and what to do;
    ``expression``, when the field is known as one, is its FHIRPath in the resource as sent
    (``CommunicationRequest.subject``): the API answers it as the issue's ``expression``.
    ``missing``: the field is required and absent (the API's issue code ``required``, not
    ``invalid``)."""

    def __init__(self, message: str, *, expression: str | None = None, missing: bool = False) -> None:
        super().__init__(message)
        self.expression = expression
        self.missing = missing

    @property
    def issue_code(self) -> str:
        """FHIR's IssueType for it: ``required`` for a required field that is absent, else ``invalid``."""
        return "required" if self.missing else "invalid"


class RenderError(RequestError):
    """A template cannot be rendered for this request."""

    @property
    def issue_code(self) -> str:
        """``processing``: read, but it cannot be done as it stands (the API's 422)."""
        return "processing"


class RequestConflict(RequestError):
    """The request's id (or identifier) was used before for a request that asked for something
    else (another patient, category, template, variables, words or times): it is not a retry of
    that one, so nothing was sent or filed. ``earlier`` is the id of the request decided then."""

    def __init__(self, message: str, *, earlier: str) -> None:
        super().__init__(message, expression="CommunicationRequest.identifier")
        self.earlier = earlier

    @property
    def issue_code(self) -> str:
        """``conflict`` (the API's 409; ``send_many``'s outcome carries it as ``error``)."""
        return "conflict"


class SubjectMismatch(RequestError):
    """The request names its patient twice, by reference (``Patient/<id>``) and by identifier,
    and the clinic's directory does not find the same patient by both (or nobody by one of them):
    which one is meant cannot be told, so nothing was sent or filed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, expression="CommunicationRequest.subject")

    @property
    def issue_code(self) -> str:
        """``business-rule``: read, but its two names of the patient disagree (the API's 422)."""
        return "business-rule"


class RecipientRefused(EmrcommError, ValueError):
    """A directory knows this patient, and the chart says they must not be messaged: recorded
    deceased, a chart no longer in use, merge links that lead to no chart in use. A directory
    raises it from ``emrcomm_find_recipient``; the host blocks the request with RECIPIENT_REFUSED,
    ``str(exc)`` its reason (a sentence for staff, naming the patient by ``Patient/<id>`` only:
    never a name, phone number, address or health number). ``plugin`` is the directory that
    refused, set by the host.

    (A ValueError too: it was :mod:`emrcomm.fhir.patients`' own, which directories caught as one.)
    """

    plugin: str | None = None

    @property
    def reason(self) -> str:
        """``str(exc)`` as staff read it: on one line, at most 300 characters; one that says
        nothing reads as such."""
        said = " ".join("".join(c if c.isprintable() else " " for c in str(self)).split())
        if len(said) > 300:
            said = said[:299] + "…"
        return said or "the directory gave no reason"


class PluginError(EmrcommError):
    """A plugin failed to load or broke the hook contract. The message names the plugin."""


class PluginUnavailable(PluginError):
    """A server a plugin needs cannot answer now (down, slow past its timeout, answering 5xx or
    something that cannot be read): the plugin's check could not run, so nothing was decided,
    sent or filed, and nothing is said about the patient. The same request again later is decided
    then: the FHIR API answers 503 with ``Retry-After``, ``emrcomm send`` exits 4, and
    ``Host.send_many`` gives that request a ``failed`` Outcome whose ``error`` is ``transient``
    and goes on with the others. ``retry_after``: the seconds the server asked for, when it did.
    The message names the plugin and the server, never the patient."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def issue_code(self) -> str:
        """``transient`` (FHIR's IssueType): not the request's fault; send it again later."""
        return "transient"


class ProbeFailed(EmrcommError):
    """A step of a :class:`~emrcomm.Probe` did not work. The message says what happened, in words
    a clinic understands, and the setting to check: ``AUTH refused (535): check
    plugins.email.smtp.password``."""
