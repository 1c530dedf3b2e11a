"""Generated hostile input for every surface: the portal pages and the delivery callbacks of
``emrcomm serve``'s app, ``Host.send`` given request text, and the ``emrcomm`` command's request,
config and ``check --jsonl`` readers. Whatever comes in: no 5xx, no traceback, no hang past a
bound, and nothing sent or filed for input that is not valid.

The budget is fixed for CI (derandomized, about 1,500 inputs in all). ``EMRCOMM_FUZZ_EXAMPLES=N``
shares N inputs among the surfaces, with fresh random draws, for a longer hunt. Inputs found by
earlier hunts stay here as ``@example``s: they run every time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from emrcomm.cli import main
from emrcomm.config import load_config
from emrcomm.errors import RequestError
from emrcomm.host import Host
from emrcomm.testing import FixedClock
from emrcomm.web import create_app
from emrcomm_sms.callbacks import mo_token, record_signature
from emrcomm_sms.routes import twilio_signature
from hostile_kit import BASE, FORM, NUMBER, SECRET, TOKEN, InProcess, kannel_config, twilio_config
from support import BASE_CONFIG, fhir_request, with_store, write_config

TOTAL = int(os.environ.get("EMRCOMM_FUZZ_EXAMPLES", "0")) or None
CI_BUDGET = 1500
# Each surface's share of the budget.
SHARES = {"portal": 0.25, "callbacks": 0.25, "twilio": 0.08, "host": 0.24, "send": 0.06,
          "config": 0.05, "jsonl": 0.07}
HANG = 20.0  # seconds: no single input may take longer (the bound is generous; it decides nothing else)


def fuzz(surface: str) -> Callable[[Any], Any]:
    examples = max(10, round((TOTAL or CI_BUDGET) * SHARES[surface]))
    return settings(max_examples=examples, deadline=None, derandomize=TOTAL is None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


COUNTED: dict[str, int] = {}


def counted(surface: str) -> None:
    COUNTED[surface] = COUNTED.get(surface, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    print(f"\nfuzz: {sum(COUNTED.values())} generated inputs: "
          + ", ".join(f"{k} {v}" for k, v in sorted(COUNTED.items())))


# The state an invalid input must leave as it was ----------------------------------------------------
def fingerprint(host: Host) -> tuple[Any, ...]:
    sink = host.config.base_dir / "out" / "sms.jsonl"
    last = host.storage.audit.last()
    return (host.records()["total"], last["seq"] if last else 0, tuple(sorted(host.storage.outbox.counts().items())),
            len(host.storage.inbox.items(state=None)), sink.stat().st_size if sink.exists() else 0)


class ErrorLog(logging.Handler):
    """Errors the server side logs: a handler's exception (ErrorShield) or a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("emrcomm.web", "uvicorn")) or record.exc_info:
            self.seen.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module")
def errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[Callable[[], str | None]]:
    """The hosts of this module live as long as it does, on each store in turn: this gives each
    its PostgreSQL database (None: SQLite in its folder). tests/conftest.py parametrises the
    other modules test by test."""
    if request.param == "sqlite":
        yield lambda: None
        return
    server = request.getfixturevalue("postgres_server")
    made: list[str] = []

    def new() -> str:
        made.append(server.lend("emrcomm_current"))
        return made[-1]

    yield new
    for url in made:
        server.give_back(url, "emrcomm_current")


def served(tmp: Path, config_text: str, store: str | None) -> tuple[Host, InProcess]:
    write_config(tmp)
    (tmp / "emrcomm.toml").write_text(with_store(config_text, store), encoding="utf-8")
    host = Host(load_config(tmp / "emrcomm.toml"), clock=FixedClock())
    return host, InProcess(create_app(host))


# No rate limit in the way of the generator (each input also comes from an address of its own).
UNLIMITED = "\n[plugins.portal]\nrate_limit_per_minute = 10000\n"


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory, store: Callable[[], str | None]) -> Iterator[tuple[Host, InProcess]]:
    tmp = tmp_path_factory.mktemp("kannel")
    text = kannel_config(tmp, "callback_rate_limit_per_minute = 600000\n").replace(
        '[plugins.portal]\nkeyring = "keyring.json"\n', '[plugins.portal]\nkeyring = "keyring.json"\n'
        'rate_limit_per_minute = 10000\n')
    host, client = served(tmp, text, store())
    yield host, client
    client.close()
    host.close()


@pytest.fixture(scope="module")
def twilio(tmp_path_factory: pytest.TempPathFactory, store: Callable[[], str | None]) -> Iterator[tuple[Host, InProcess]]:
    tmp = tmp_path_factory.mktemp("twilio")
    host, client = served(tmp, twilio_config(tmp), store())
    yield host, client
    client.close()
    host.close()


ADDRESSES = iter(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, 1 << 24))


def call(client: InProcess, errors: ErrorLog, method: str, path: str, *, query: bytes = b"", body: bytes = b"",
         headers: list[tuple[bytes, bytes]] | None = None) -> int:
    before = len(errors.seen)
    answer = client.request(method, path, query=query, body=body, headers=headers or [], client=next(ADDRESSES),
                            timeout=HANG)
    assert answer.status_code < 500, (answer.status_code, method, path, query[:200], body[:200])
    assert "Traceback" not in answer.text
    assert errors.seen[before:] == []
    return answer.status_code


# Strategies -----------------------------------------------------------------------------------------
NASTY = ["²", "١٩٨٠", "１２", "1" * 60_000, "9" * 5000, "\x00", "\r\nINFO forged", "é", "\ud800", "-1", "0x1",
         "1e3", " 12 ", "12\x00", "\u202e", "%00", "../../etc/passwd", "<script>", "{{ 7*7 }}", "null", ""]
texts = st.one_of(st.text(max_size=40), st.sampled_from(NASTY), st.text(alphabet="0123456789", max_size=6000),
                  st.integers().map(str), st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
raw_headers = st.lists(st.tuples(
    st.sampled_from([b"origin", b"sec-fetch-site", b"content-type", b"cookie", b"x-forwarded-for", b"referer",
                     b"accept-language", b"x-twilio-signature", b"transfer-encoding", b"content-encoding"]),
    st.one_of(st.binary(max_size=60), st.sampled_from([b"null", b"cross-site", b"multipart/form-data; boundary=x",
                                                       b"application/x-www-form-urlencoded", b"\xc3\xa9" * 30]))),
    max_size=4)


def encoded(fields: dict[str, str]) -> bytes:
    return urlencode(fields, encoding="utf-8", errors="surrogatepass").encode("ascii")


bodies = st.one_of(
    st.dictionaries(st.sampled_from(["day", "month", "year", "lang", "session", "text", "index", "page"]) | texts,
                    texts, max_size=12).map(encoded),
    st.binary(max_size=3000),
    st.just(b"--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--x--\r\n"),
)
tokens = st.one_of(st.from_regex(r"1[a-z2-7]{52}", fullmatch=True), texts, st.text(alphabet="abc%/", max_size=90))
portal_paths = st.one_of(
    st.sampled_from(["/m/-/view", "/m/-/reply", "/m/-/attachment", "/healthz", "/static/portal.css", "/m/"]),
    st.builds(lambda t, end: f"/m/{t}{end}", tokens, st.sampled_from(["", "/open", "/open/", "/x"])),
    st.text(max_size=60).map(lambda s: "/" + s),
)
methods = st.sampled_from(["GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "G\r\nET"])


# 1. the portal pages ----------------------------------------------------------------------------------
@fuzz("portal")
@given(method=methods, path=portal_paths, query=texts, body=bodies, headers=raw_headers)
@example(method="POST", path="/m/" + "a" * 53 + "/open", query="", body=encoded({"day": "²", "month": "4", "year": "1980"}),
         headers=[])
@example(method="POST", path="/m/-/attachment", query="", body=encoded({"index": "²", "session": "x"}), headers=[])
@example(method="POST", path="/m/-/reply", query="", body=b"session=x&text=hi", headers=[(b"origin", b"null")])
@example(method="POST", path="/m/-/reply", query="", body=b"", headers=[(b"content-length", "²".encode("latin-1"))])
@example(method="GET", path="/m/a\r\nINFO forged", query="lang=\x00", body=b"", headers=[])
def test_the_portal_pages_answer_any_request_without_an_error(
        kannel: tuple[Host, InProcess], errors: ErrorLog, method: str, path: str, query: str, body: bytes,
        headers: list[tuple[bytes, bytes]]) -> None:
    counted("portal")
    host, client = kannel
    before = fingerprint(host)
    form_headers = [FORM, *headers] if method == "POST" and not any(k == b"content-type" for k, _ in headers) \
        else headers
    query_bytes = quote(query, safe="=&", errors="surrogatepass").encode("ascii")
    call(client, errors, method, path, query=query_bytes, body=body, headers=form_headers)
    assert fingerprint(host) == before  # no session, no link: nothing to change


def test_the_portal_pages_answer_a_real_link_and_session_hostile_fields(
        kannel: tuple[Host, InProcess], errors: ErrorLog) -> None:
    """The generator rarely guesses a live link: this walks one real message through its pages
    with hostile fields at each step."""
    from portal_kit import BIRTH_DATE, notice_for, send_note, token_in

    host, client = kannel
    outcome = send_note(host, rid="fuzz-walk")
    token = token_in(notice_for(host, outcome)["text"])
    for day in NASTY:
        call(client, errors, "POST", f"/m/{token}/open",
             body=encoded({"day": day, "month": "13", "year": "1980", "lang": day}), headers=[FORM])
    opened = client.post(f"/m/{token}/open", {"day": str(BIRTH_DATE.day), "month": str(BIRTH_DATE.month),
                                              "year": str(BIRTH_DATE.year)}, client=next(ADDRESSES))
    assert opened.status_code == 200
    session = opened.text.split('name="session" value="', 1)[1].split('"', 1)[0]
    for value in NASTY:
        for path, fields in (("/m/-/view", {"session": session, "lang": value, "page": value}),
                             ("/m/-/attachment", {"session": session, "index": value})):
            call(client, errors, "POST", path, body=encoded(fields), headers=[FORM])
    counted("portal")


# 2. the delivery callbacks ------------------------------------------------------------------------------
callback_keys = st.sampled_from(["record", "sig", "type", "token", "from", "to", "text", "id", "smsc_id", "answer"])


@st.composite
def kannel_calls(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bool]:
    path = draw(st.sampled_from(["/callbacks/kannel/dlr", "/callbacks/kannel/mo", "/callbacks/kannel/dlr/",
                                 "/callbacks/twilio/status", "/callbacks/", "/callbacks/kannel/x"]))
    params = draw(st.dictionaries(callback_keys | texts, texts, max_size=8))
    signed = draw(st.booleans())
    if signed and path.endswith("/dlr"):
        record = draw(st.one_of(st.uuids().map(lambda u: u.hex), texts.filter(bool)))
        params.update(record=record, sig=record_signature(SECRET, record))
    elif signed and path.endswith("/mo"):
        params.update(token=mo_token(SECRET))
    return draw(st.sampled_from(["GET", "POST"])), path, params, signed


@fuzz("callbacks")
@given(call_=kannel_calls(), as_body=st.booleans())
@example(call_=("GET", "/callbacks/kannel/dlr", {"record": "x", "sig": "é"}, False), as_body=False)
@example(call_=("GET", "/callbacks/kannel/dlr", {"record": "é", "sig": "\u2603" * 64, "type": "1"}, False),
         as_body=False)
@example(call_=("GET", "/callbacks/kannel/mo", {"token": "é", "from": NUMBER, "text": "STOP"}, False), as_body=False)
@example(call_=("GET", "/callbacks/kannel/dlr", {"record": "r", "sig": record_signature(SECRET, "r"),
                                                 "type": "²"}, True), as_body=False)
@example(call_=("GET", "/callbacks/kannel/dlr", {"record": "r", "sig": record_signature(SECRET, "r"),
                                                 "type": "1" * 60_000}, True), as_body=False)
def test_the_kannel_callbacks_answer_any_request_without_an_error(
        kannel: tuple[Host, InProcess], errors: ErrorLog, call_: tuple[str, str, dict[str, str], bool],
        as_body: bool) -> None:
    counted("callbacks")
    host, client = kannel
    method, path, params, signed = call_
    before = fingerprint(host)
    data = encoded(params)
    if method == "POST" and as_body:
        call(client, errors, method, path, body=data, headers=[FORM])
    else:
        call(client, errors, method, path, query=data)
    if not signed:
        assert fingerprint(host) == before


@st.composite
def twilio_calls(draw: st.DrawFn) -> tuple[str, dict[str, str], str, bool]:
    path = draw(st.sampled_from(["/callbacks/twilio/status", "/callbacks/twilio/inbound",
                                 "/callbacks/twilio/status?record=" + draw(st.text(alphabet="abcdef0123", max_size=32))]))
    form = draw(st.dictionaries(st.sampled_from(["From", "Body", "MessageSid", "MessageStatus", "ErrorCode", "To"])
                                | texts, texts, max_size=8))
    signed = draw(st.booleans())
    signature = twilio_signature(TOKEN, BASE + path.removeprefix("/callbacks"), form) if signed else draw(texts)
    return path, form, signature, signed


@fuzz("twilio")
@given(call_=twilio_calls())
@example(call_=("/callbacks/twilio/inbound", {"From": NUMBER, "Body": "STOP"}, "é" * 28, False))
@example(call_=("/callbacks/twilio/status", {"\ud800": ""}, "x", False))  # found here: a surrogate in a field
def test_the_twilio_callbacks_answer_any_request_without_an_error(
        twilio: tuple[Host, InProcess], errors: ErrorLog, call_: tuple[str, dict[str, str], str, bool]) -> None:
    counted("twilio")
    host, client = twilio
    path, form, signature, signed = call_
    before = fingerprint(host)
    target, _, query = path.partition("?")
    call(client, errors, "POST", target, query=query.encode("ascii"), body=encoded(form),
         headers=[FORM, (b"x-twilio-signature", signature.encode("utf-8", "surrogatepass"))])
    if not signed:
        assert fingerprint(host) == before


# 3. Host.send given request text ---------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=20)
FIELDS = ["resourceType", "id", "status", "category", "subject", "payload", "extension", "occurrenceDateTime",
          "occurrencePeriod", "medium", "meta", "priority", "identifier", "requester", "sender"]


def base_request(rid: str = "fuzz-1") -> dict[str, Any]:
    return fhir_request("Patient/on-en", "appointment-reminder", template="appointment-reminder", rid=rid,
                        variables={"appointment": ("valueDateTime", "2026-11-24T10:30:00-05:00")})


@st.composite
def request_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["mutated", "mutated", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400)).decode("utf-8", "replace")
    if kind == "json":
        return json.dumps(draw(json_values))
    request = base_request(draw(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True)))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(FIELDS) | texts)
        if draw(st.booleans()) and key in request:
            del request[key]
        else:
            request[key] = draw(json_values)
    return json.dumps(request, ensure_ascii=draw(st.booleans()))


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, store: Callable[[], str | None]) -> Iterator[Host]:
    tmp = tmp_path_factory.mktemp("host")
    path = write_config(tmp)
    path.write_text(with_store(path.read_text(), store()), encoding="utf-8")
    built = Host(load_config(path), clock=FixedClock())
    yield built
    built.close()


@fuzz("host")
@given(text=request_texts())
@example(text="[" * 100_000 + "]" * 100_000)
@example(text=json.dumps(base_request())[:-1] + ', "n": ' + "9" * 5000 + "}")  # found by review: int digit limit
@example(text=json.dumps({**base_request(), "id": "a" * 65}))
@example(text=json.dumps({**base_request(), "payload": None}))  # found here: passed the R4B model, then TypeError
@example(text=json.dumps({**base_request(), "category": None}))
@example(text=json.dumps({**base_request(), "occurrenceDateTime": 0}))  # found here: the model takes a number
@example(text=json.dumps({**base_request(), "payload": [{"contentString": "hi \x00"}]}))
@example(text=json.dumps({**base_request(), "payload": [{"contentString": "x" * 5_000_000}]}))
@example(text=json.dumps({**base_request(), "extension": [*base_request()["extension"], {
    "url": "http://emrcomm.org/fhir/StructureDefinition/variable",
    "extension": [{"url": "name", "valueString": "birthday"}, {"url": "value", "valueDate": "1980"}]}]}))
def test_host_send_answers_any_request_text_with_an_outcome_or_a_request_error(host: Host, text: str) -> None:
    counted("host")
    before = fingerprint(host)
    try:
        outcome = host.send(text)
    except RequestError:
        assert fingerprint(host) == before  # refused: nothing sent or filed
    else:
        assert outcome.status.value in ("sent", "queued", "held", "blocked", "failed")


# 4. the emrcomm command: send, check-config, check --jsonl ------------------------------------------------
def run_cli(*args: str) -> tuple[int, str, str]:
    """``emrcomm ARGS`` in this process, in a thread that must finish within HANG seconds."""
    out, err = io.StringIO(), io.StringIO()
    result: list[Any] = []

    def work() -> None:
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                result.append(main(list(args)))
        except BaseException as exc:  # a traceback: reported below with its type
            result.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(HANG)
    assert result, f"emrcomm {' '.join(args)[:200]} still running after {HANG} s"
    assert not isinstance(result[0], BaseException), f"{type(result[0]).__name__}: {result[0]}"
    assert "Traceback" not in err.getvalue()
    return result[0], out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory, store: Callable[[], str | None]) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    path = write_config(tmp)
    path.write_text(with_store(path.read_text(), store()), encoding="utf-8")
    return tmp


@pytest.fixture(scope="module")
def check_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``emrcomm check`` judges texts and never files or sends: one store (SQLite) is enough."""
    tmp = tmp_path_factory.mktemp("check")
    write_config(tmp)
    return tmp


def sink_size(folder: Path) -> int:
    sink = folder / "out" / "sms.jsonl"
    return sink.stat().st_size if sink.exists() else 0


@fuzz("send")
@given(content=st.one_of(request_texts().map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=300)),
       suffix=st.sampled_from([".json", ".jsonl", ".ndjson", ".txt"]))
@example(content=b'{"resourceType": "\xff\xfe"}', suffix=".json")
@example(content=("[" * 100_000 + "]" * 100_000).encode(), suffix=".json")
@example(content=("[" * 100_000 + "]" * 100_000 + "\n").encode(), suffix=".jsonl")
@example(content=b"9" * 5000, suffix=".json")  # found by review: Python's int digit limit
@example(content=b"9" * 5000 + b"\n", suffix=".jsonl")
def test_emrcomm_send_reads_any_file_without_a_traceback(cli_dir: Path, content: bytes, suffix: str) -> None:
    counted("send")
    path = cli_dir / f"request{suffix}"
    path.write_bytes(content)
    before = sink_size(cli_dir)
    code, _, err = run_cli("send", str(path), "--config", str(cli_dir / "emrcomm.toml"))
    assert code in (0, 2, 3), err
    if code == 2 and suffix not in (".jsonl", ".ndjson"):
        assert sink_size(cli_dir) == before


CONFIG_KEYS = ["clinic", "store", "delivery", "audit", "rules", "plugins", "limits", "name", "path", "mode",
               "jurisdiction", "time_zones", "link_domains", "portal_url", "sms", "email", "portal", "templates",
               "order", "disable", "text_chars", "json_depth", "request_bytes", "channel_text_chars", "severity"]
# Strings a generated config may hold: no '/' and no '..', so no path leaves its own folder.
safe_strings = st.text(alphabet=st.characters(blacklist_characters="/\\.", blacklist_categories=("Cs",)), max_size=20)
toml_scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1) | safe_strings
                | st.floats(allow_nan=False, allow_infinity=False))
toml_values = toml_scalars | st.lists(toml_scalars, max_size=3) | st.dictionaries(
    st.sampled_from(CONFIG_KEYS) | safe_strings, toml_scalars | st.lists(toml_scalars, max_size=3), max_size=3)


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if "e" in repr(value) or "." in repr(value) else f"{value}.0"
    return json.dumps(value) if isinstance(value, str) else str(value)


@st.composite
def config_texts(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["edited", "edited", "edited", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    lines = [BASE_CONFIG]
    for _ in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from(["clinic", "store", "delivery", "audit", "rules", "limits", "plugins.sms",
                                      "plugins.portal", "plugins.templates", "plugins.email", "limits.channel_text_chars",
                                      "rules.severity", "plugins"]))
        key = draw(st.sampled_from(CONFIG_KEYS) | safe_strings.filter(bool))
        lines.append(f"\n[{table}]\n{json.dumps(key)} = {toml_value(draw(toml_values))}\n")
    return "".join(lines).encode("utf-8")


@fuzz("config")
@given(content=config_texts())
@example(content=b'[clinic]\nname = "Clinique \xe9t\xe9"\n')
@example(content=('[clinic]\nname = "x"\n[plugins.sms]\nx = ' + "[" * 100_000 + "]" * 100_000 + "\n").encode())
@example(content=(BASE_CONFIG + "\n[limits]\ntext_chars = 5\n").encode())
def test_emrcomm_check_config_reads_any_config_without_a_traceback(
        tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    counted("config")
    folder = tmp_path_factory.mktemp("config")
    write_config(folder)
    (folder / "emrcomm.toml").write_bytes(content)
    code, _, err = run_cli("check-config", "--config", str(folder / "emrcomm.toml"))
    assert code in (0, 2), err


jsonl_items = st.one_of(
    st.fixed_dictionaries({"text": texts}, optional={"channel": st.sampled_from(["sms", "email", "portal", "fax"]) | texts,
                                                     "category": st.sampled_from(["invoice", "clinical"]) | texts,
                                                     "lang": st.sampled_from(["en", "fr"]) | texts}).map(json.dumps),
    json_values.map(json.dumps),
    st.binary(max_size=100).map(lambda b: b.decode("utf-8", "replace")),
)


@fuzz("jsonl")
@given(lines=st.lists(jsonl_items, min_size=1, max_size=4), raw=st.binary(max_size=60))
@example(lines=['{"text": "hi \\u0000"}'], raw=b"")
@example(lines=["[" * 100_000 + "]" * 100_000], raw=b"")
@example(lines=['{"text": "hi", "n": ' + "9" * 5000 + "}"], raw=b"")  # found by review: int digit limit
@example(lines=[], raw=b'{"text": "caf\xe9"}')
def test_emrcomm_check_jsonl_reads_any_lines_without_a_traceback(check_dir: Path, lines: list[str], raw: bytes) -> None:
    counted("jsonl")
    path = check_dir / "texts.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + raw)
    before = sink_size(check_dir)
    code, _, err = run_cli("check", "--channel", "sms", "--jsonl", str(path), "--config", str(check_dir / "emrcomm.toml"))
    assert code in (0, 2, 3), err
    assert sink_size(check_dir) == before  # check never sends


def test_the_fixed_budget_is_what_ci_runs() -> None:
    assert TOTAL is not None or sum(max(10, round(CI_BUDGET * s)) for s in SHARES.values()) == CI_BUDGET
    assert dt.datetime  # the fuzz suite reads no clock
