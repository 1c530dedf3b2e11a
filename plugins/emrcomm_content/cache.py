"""The compiled lexicons (matcher + misspelling index), built once and cached on disk.

Deriving the packaged lexicons takes seconds (reading the drug dictionary and the ICD-10-CM
XML, filtering with wordfreq); loading the compiled result takes a fraction of a second. The
cache is a file per set of lexicon names in a per-user folder (:func:`cache_dir`):
``$EMRCOMM_CACHE_DIR``, else ``$XDG_CACHE_HOME/emrcomm``, else ``~/.cache/emrcomm``.

The file is keyed (:func:`cache_key`) by the build code version and a hash of the build code,
a hash of the project's own lists, the installed versions of the source packages and of
pyahocorasick, and the Python version. A file with another key, a damaged file (its payload
carries a SHA-256 that is checked before anything is unpickled) or one that does not load is
rebuilt and replaced; it is written to a temporary file and renamed into place, so that readers
never see half a file. A folder that cannot be written is not an error: the lexicons are then
compiled in memory. Detection never runs on less than a full build.

The file is a pickle: it is trusted as the user's own files are (the folder is created private
to the user).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import sys
import tempfile
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from attrs import frozen

from emrcomm_content import fuzzy, lexicon
from emrcomm_content.folding import fold_text
from emrcomm_content.lexicon import Matcher

BUILD_VERSION = "1"  # raise when the compiled format or the derivation changes in a way hashes miss
MAGIC = b"emrcomm-lexicons\n"
_BUILD_MODULES = ("lexicon.py", "sources.py", "fuzzy.py", "folding.py", "cache.py")
FUZZY_KINDS = frozenset({"medication", "condition", "test", "procedure", "specialty"})
log = logging.getLogger("emrcomm.content")


@frozen
class Compiled:
    """The lexicons named ``names``, compiled: one matcher and one misspelling index.

    ``origin`` says where they came from: ``"cache"`` (loaded from ``path``), ``"built"``
    (built and written to ``path``) or ``"memory"`` (built; the cache could not be written).
    """

    names: tuple[str, ...]
    key: str
    matcher: Matcher
    fuzzy: fuzzy.FuzzyIndex
    origin: str
    path: Path | None
    seconds: float


def cache_dir() -> Path:
    """``$EMRCOMM_CACHE_DIR``, else ``$XDG_CACHE_HOME/emrcomm``, else ``~/.cache/emrcomm``."""
    if os.environ.get("EMRCOMM_CACHE_DIR"):
        return Path(os.environ["EMRCOMM_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "emrcomm"
    return Path.home() / ".cache" / "emrcomm"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def lists_hash() -> str:
    """A hash of the project's own lists (the curated terms and the deny-list)."""
    from emrcomm_content import terms

    data = repr((terms.CLINICAL_EN.entries, terms.CLINICAL_FR.entries, sorted(terms.NOT_CLINICAL_TERMS)))
    return hashlib.sha256(data.encode()).hexdigest()


def code_hash() -> str:
    """A hash of the modules that build the compiled lexicons."""
    h = hashlib.sha256(BUILD_VERSION.encode())
    here = Path(__file__).parent
    for name in _BUILD_MODULES:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def cache_key(names: tuple[str, ...]) -> str:
    """What the compiled lexicons for ``names`` depend on, hashed."""
    from emrcomm_content.sources import source_versions

    parts = {
        "build": BUILD_VERSION,
        "code": code_hash(),
        "lists": lists_hash(),
        "lexicons": list(names),
        "sources": source_versions(),  # wordfreq also decides the misspelling index of "core"
        "pyahocorasick": _version("pyahocorasick"),
        "python": list(sys.version_info[:2]),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_path(names: tuple[str, ...], folder: Path | None = None) -> Path:
    return (folder or cache_dir()) / f"lexicons-{'+'.join(names) or 'none'}.pickle"


def build(names: tuple[str, ...]) -> tuple[Matcher, fuzzy.FuzzyIndex]:
    """Compile the lexicons ``names`` from their sources (slow: seconds for the packaged ones)."""
    from emrcomm_content import sources

    lexicons = lexicon.load_lexicons(names)
    matcher = Matcher(lexicons)
    # Misspellings are tolerated for the medicines patients take: the project's own medication
    # names, and the packaged names of drugs with a consumer (MedlinePlus / NHS) page.
    # Also for the project's own single-word terms that are clinical on their own (tests,
    # conditions, procedures, specialties): "ferritine", "colonoscopie".
    candidates: dict[str, str] = {}
    if "drugs" in names:
        candidates.update(dict.fromkeys(sources.consumer_drug_names(), "medication"))
    for lex in lexicons:
        if lex.name in ("core-en", "core-fr"):
            for term, kind in lex.entries:
                if kind in FUZZY_KINDS and not any(c.isupper() for c in term):
                    candidates.setdefault(fold_text(term).strip(), kind)
    names_for_fuzzy = {
        n: kind for n, kind in candidates.items()
        if n.isalpha() and len(n) >= fuzzy.MIN_LENGTH and sources.zipf(n) < fuzzy.NAME_ZIPF and n in matcher
    }
    index = fuzzy.FuzzyIndex(names_for_fuzzy, fuzzy.real_words_near(names_for_fuzzy))
    sources.release()
    return matcher, index


def _read(path: Path, key: str) -> tuple[Matcher, fuzzy.FuzzyIndex] | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    head = len(MAGIC) + 65
    if not raw.startswith(MAGIC) or len(raw) < head:
        return None
    digest, payload = raw[len(MAGIC) : head - 1], memoryview(raw)[head:]  # a view: no second 22 MB copy
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        log.warning("lexicon cache %s is damaged: rebuilding it", path)
        return None
    try:
        data = pickle.loads(payload)
    except Exception as exc:  # any unpickling failure means: rebuild
        log.warning("lexicon cache %s does not load (%s): rebuilding it", path, exc)
        return None
    if (
        not isinstance(data, dict)
        or data.get("key") != key
        or not isinstance(data.get("matcher"), Matcher)
        or not isinstance(data.get("fuzzy"), fuzzy.FuzzyIndex)
    ):
        return None
    return data["matcher"], data["fuzzy"]


def _write(path: Path, key: str, matcher: Matcher, index: fuzzy.FuzzyIndex) -> bool:
    payload = pickle.dumps({"key": key, "matcher": matcher, "fuzzy": index}, protocol=pickle.HIGHEST_PROTOCOL)
    data = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("lexicon cache %s cannot be written (%s): compiled in memory only", path, exc)
        return False
    return True


def load(names: tuple[str, ...], folder: Path | None = None) -> Compiled:
    """The compiled lexicons ``names``: from the cache when it is current, else built (and cached)."""
    started = time.perf_counter()
    key = cache_key(names)
    path = cache_path(names, folder)
    found = _read(path, key)
    if found is not None:
        return Compiled(names, key, found[0], found[1], "cache", path, time.perf_counter() - started)
    matcher, index = build(names)
    origin = "built" if _write(path, key, matcher, index) else "memory"
    seconds = time.perf_counter() - started
    log.info("lexicons %s compiled in %.1f s (%s)", "+".join(names), seconds, path if origin == "built" else "memory")
    return Compiled(names, key, matcher, index, origin, path if origin == "built" else None, seconds)


def compiled(names: tuple[str, ...], folder: Path | None = None) -> Compiled:
    """:func:`load`, once per process for each set of names and cache folder."""
    return _compiled(names, folder or cache_dir())


@lru_cache(maxsize=8)
def _compiled(names: tuple[str, ...], folder: Path) -> Compiled:
    return load(names, folder)
