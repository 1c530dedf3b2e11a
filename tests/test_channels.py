"""The built-in channels (emrcomm_register_channels): file sinks, the encrypted portal, conflicts."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import stat
from email.header import decode_header, make_header
from importlib import metadata
from pathlib import Path

import attrs
import pytest

import emrcomm_email
import emrcomm_portal
import emrcomm_sms
from emrcomm import Delivery
from emrcomm.errors import ConfigError, PluginError
from emrcomm.model import Message, Request
from emrcomm.plugin.context import Clinic
from emrcomm.storage import open_sqlite
from emrcomm.testing import TEST_CLINIC, TEST_NOW, make_context
from emrcomm_portal.keyring import KeyRing
from emrcomm_portal.storage import MIGRATIONS as PORTAL_TABLES


def message(text: str = "Riverside Family Health: see you at 10:30.", language: str = "en") -> Message:
    return Message(Request("Patient/1", "appointment-reminder", text=text), text, language=language,
                   subject="Your appointment")


def test_sms_plugin_registers_an_insecure_sms_channel(tmp_path: Path) -> None:
    [channel] = emrcomm_sms.Plugin(make_context("sms", {"max_segments": 2}, tmp_path)).emrcomm_register_channels()
    assert (channel.name, channel.secure, channel.medium, channel.max_segments) == ("sms", False, "SMSWRIT", 2)


def test_a_gateway_moved_to_its_module_is_still_imported_from_its_package() -> None:
    # A third-party plugin's `from emrcomm_sms import KannelTransport` keeps working: the package
    # imports it when asked (so `emrcomm --help` still starts without requests, tests/test_cli.py).
    from emrcomm_email import SmtpTransport, smtp
    from emrcomm_sms import KannelTransport, TwilioTransport, kannel, twilio

    assert KannelTransport is kannel.KannelTransport
    assert TwilioTransport is twilio.TwilioTransport
    assert SmtpTransport is smtp.SmtpTransport
    assert {"KannelTransport", "TwilioTransport"} <= set(emrcomm_sms.__all__)
    assert "SmtpTransport" in emrcomm_email.__all__


@pytest.mark.parametrize("package", [emrcomm_sms, emrcomm_email])
def test_a_name_a_channel_package_never_had_is_still_missing(package: object) -> None:
    with pytest.raises(AttributeError, match="no attribute 'KannelTransports'"):
        getattr(package, "KannelTransports")  # noqa: B009 - the name is what is tested
    assert not hasattr(package, "SmtpTransports")


def test_sms_file_sink_writes_each_key_once(tmp_path: Path) -> None:
    [channel] = emrcomm_sms.Plugin(make_context("sms", {"path": "out.jsonl"}, tmp_path)).emrcomm_register_channels()
    channel.transport.send(Delivery(message(), "+16135550123", "k1"))
    channel.transport.send(Delivery(message(), "+16135550123", "k1"))
    # a new process (a restart) still knows the key
    [again] = emrcomm_sms.Plugin(make_context("sms", {"path": "out.jsonl"}, tmp_path)).emrcomm_register_channels()
    receipt = again.transport.send(Delivery(message(), "+16135550123", "k1"))
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(x["id"], x["to"]) for x in lines] == [("k1", "+16135550123")]
    assert receipt.provider_id == "k1" and receipt.at == TEST_NOW


def test_email_file_sink_writes_a_proper_message(tmp_path: Path) -> None:
    plugin = emrcomm_email.Plugin(make_context("email", {"directory": "mail", "from": "Clinic <no@clinic.example>"},
                                               tmp_path))
    [channel] = plugin.emrcomm_register_channels()
    assert (channel.name, channel.secure, channel.medium) == ("email", False, "EMAILWRIT")
    channel.transport.send(Delivery(message(language="fr"), "pat@example.org", "k2"))
    channel.transport.send(Delivery(message(language="fr"), "pat@example.org", "k2"))
    [path] = list((tmp_path / "mail").glob("*.eml"))
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["To"] == "pat@example.org" and mail["Subject"] == "Your appointment"
    assert mail["Message-ID"].endswith("@clinic.example>") and mail["Date"]
    body = mail.get_content()
    assert body.startswith("Riverside Family Health: see you at 10:30.")
    assert "reçu ce message par erreur" in body


def test_portal_stores_only_ciphertext_and_reads_it_back(tmp_path: Path) -> None:
    ctx = make_context("portal", {"keyring": "ring.json"}, tmp_path)
    plugin = emrcomm_portal.Plugin(ctx)
    ctx.storage.migrate(plugin.emrcomm_migrations())
    [channel] = plugin.emrcomm_register_channels()
    assert channel.secure and channel.holds_content and channel.medium == "ONLINEWRIT"
    key = "0123456789abcdef0123456789abcdef"
    receipt = channel.transport.send(Delivery(message("Your biopsy is benign."), "Patient/1", key))
    row = plugin.transport.messages.get(receipt.provider_id)
    assert row is not None and b"biopsy" not in bytes(row["ciphertext"])
    assert channel.transport.read(receipt.provider_id)["text"] == "Your biopsy is benign."


def test_portal_key_ring_is_created_private(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path / "emrcomm.sqlite", migrations=PORTAL_TABLES)
    plugin = emrcomm_portal.Plugin(make_context("portal", {"keyring": "ring.json"}, tmp_path, storage=store))
    assert not (tmp_path / "ring.json").exists()  # written once start-up has seen no stored message needs another
    plugin.start()
    assert stat.S_IMODE((tmp_path / "ring.json").stat().st_mode) == 0o600


def test_portal_refuses_a_key_ring_others_can_read(tmp_path: Path) -> None:
    KeyRing.generate().save(tmp_path / "ring.json")
    os.chmod(tmp_path / "ring.json", 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        emrcomm_portal.Plugin(make_context("portal", {"keyring": "ring.json"}, tmp_path))


def test_two_plugins_registering_one_channel_name_stop_start_up(tmp_path: Path) -> None:
    from emrcomm.config import load_config
    from emrcomm.host import Host
    from emrcomm.plugin.manager import discover
    from support import write_config

    eps = {**discover(), "sms2": metadata.EntryPoint(name="sms2", value="emrcomm_sms:Plugin", group="emrcomm")}
    with pytest.raises(PluginError, match="channel 'sms' is registered by both 'sms' and 'sms2'"):
        Host(load_config(write_config(tmp_path, "\n[plugins.sms2]\n")), entry_points=eps)


def email_plugin(tmp_path: Path, clinic: Clinic = TEST_CLINIC, **settings: object) -> emrcomm_email.Plugin:
    return emrcomm_email.Plugin(make_context("email", {"directory": "mail", **settings}, tmp_path, clinic=clinic))


def education(text: str = "Riverside Family Health: tips for a healthy winter.") -> Message:
    return Message(Request("Patient/1", "education", text=text), text)


def sent_mail(plugin: emrcomm_email.Plugin, tmp_path: Path, message: Message, key: str) -> email.message.EmailMessage:
    [channel] = plugin.emrcomm_register_channels()
    channel.transport.send(Delivery(message, "pat@example.org", key))
    return email.message_from_bytes((tmp_path / "mail" / f"{key}.eml").read_bytes(),  # type: ignore[return-value]
                                    policy=email.policy.default)


def test_a_clinic_name_with_a_comma_is_one_sender_not_two(tmp_path: Path) -> None:
    # "Drs Smith, Jones & Partners <info@…>" unquoted is two mailboxes, the first "Drs Smith"
    # with no domain, and an SMTP envelope sender of "Drs".
    clinic = attrs.evolve(TEST_CLINIC, name="Drs Smith, Jones & Partners")
    plugin = email_plugin(tmp_path, clinic)
    mail = sent_mail(plugin, tmp_path, message(), "k7")
    [sender] = mail["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Drs Smith, Jones & Partners", "info@riverside.example")
    relay = email_plugin(tmp_path, clinic, transport="smtp", smtp={"host": "smtp.riverside.example"})
    assert relay.transport.envelope_from == "info@riverside.example"


def test_a_long_french_subject_is_written_in_encoded_words_mail_readers_accept(tmp_path: Path) -> None:
    # RFC 2047 section 2: an encoded-word is at most 75 characters. Written with lines of up to
    # 998, a French subject or clinic name was one encoded-word of 200 and more, which strict
    # readers show as =?utf-8?q?...; the unsubscribe URL must still be one unencoded line.
    clinic = attrs.evolve(TEST_CLINIC, name="Clinique médicale familiale Saint-Jérôme et associés de la Rive-Sud")
    plugin = email_plugin(tmp_path, clinic)
    subject = ("Votre rendez-vous à la Clinique médicale familiale Saint-Jérôme est confirmé pour le mardi "
               "12 décembre à 10 h 30 avec l’équipe de soins")
    mail = sent_mail(plugin, tmp_path, Message(Request("Patient/1", "education", text="x"), "x", language="fr",
                                               subject=subject), "k8")
    raw = (tmp_path / "mail" / "k8.eml").read_bytes().decode("ascii")
    head = raw.split("\n\n", 1)[0]
    words = re.findall(r"=\?[^?]+\?[qQbB]\?[^?]*\?=", head)
    assert words and max(len(w) for w in words) <= 75
    assert mail["Subject"] == subject
    # Python's own parser puts a space between two encoded-words in a name (RFC 2047 section 6.2:
    # the space between them is not part of it); its RFC 2047 decoder reads the header right.
    written_from = " ".join(line.strip() for line in re.findall(r"^From: (.*(?:\n .*)*)", head, re.M)[0].split("\n"))
    assert str(make_header(decode_header(written_from))) == f"{clinic.name} <{clinic.email}>"
    [unsubscribe] = [line for line in head.splitlines() if line.startswith("List-Unsubscribe:")]
    assert re.fullmatch(r"List-Unsubscribe: <https://\S+/unsubscribe/k8\.\S+>", unsubscribe)
    assert all(len(line) <= 78 for line in head.splitlines() if line != unsubscribe)


def test_subscription_email_without_an_unsubscribe_address_is_blocked(tmp_path: Path) -> None:
    plugin = email_plugin(tmp_path, attrs.evolve(TEST_CLINIC, portal_url=""))
    [channel] = plugin.emrcomm_register_channels()
    [f] = plugin.emrcomm_validate(education(), channel)
    assert f.code == "EMAIL_NO_UNSUBSCRIBE" and f.blocks
    assert plugin.emrcomm_validate(message(), channel) == []  # a reminder is transactional


def test_every_email_offering_an_opt_out_carries_one_click_unsubscribe_headers_and_link(tmp_path: Path) -> None:
    plugin = email_plugin(tmp_path)  # the clinic's portal address serves the endpoint
    [channel] = plugin.emrcomm_register_channels()
    assert plugin.emrcomm_validate(education(), channel) == []
    for category, key in (("education", "k3"), ("appointment-reminder", "k4")):
        mail = sent_mail(plugin, tmp_path, Message(Request("Patient/1", category, text="x"), "x"), key)
        [url] = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
        assert url.startswith(f"{TEST_CLINIC.portal_url}/unsubscribe/{key}.")
        assert plugin.signer.record_of(url.rsplit("/", 1)[1]) == key
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert url in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_the_html_part_carries_the_footer_a_mail_client_shows_instead_of_the_text(tmp_path: Path) -> None:
    plugin = email_plugin(tmp_path)
    page = "<html><body><p>Votre rendez-vous est le 25 novembre.</p></BODY></html>"
    mail = sent_mail(plugin, tmp_path, Message(Request("Patient/1", "education", text="x"), "x", language="fr",
                                               html=page), "k6")
    [url] = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
    shown = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    footer = shown[shown.index('<div class="emrcomm-footer">'):shown.index("</BODY>")]  # inside the body
    assert shown.startswith("<html><body><p>Votre rendez-vous est le 25 novembre.</p>")
    assert f'<a href="{url}">{url}</a>' in footer
    plain = mail.get_body(("plain",)).get_content().split("\n-- \n", 1)[1].strip().splitlines()  # type: ignore[union-attr]
    assert len(plain) == 2 and "reçu ce message par erreur" in plain[1]
    for line in plain:  # each line of the text's footer, in the page's
        assert line.replace(url, f'<a href="{url}">{url}</a>') in footer


def test_the_html_footer_escapes_what_it_adds() -> None:
    from emrcomm_email.compose import html_with_footer

    shown = html_with_footer("<p>Hi</p>", ["A & B <clinic>: https://x.example/u?a=1&b=2"], "https://x.example/u?a=1&b=2")
    assert shown.startswith("<p>Hi</p>\n")  # no </body>: after the page
    assert "A &amp; B &lt;clinic&gt;" in shown
    assert '<a href="https://x.example/u?a=1&amp;b=2">' in shown
    assert html_with_footer("<p>Hi</p>", [], None) == "<p>Hi</p>"


def test_an_unsubscribe_link_cannot_be_made_for_another_email(tmp_path: Path) -> None:
    plugin = email_plugin(tmp_path)
    token = plugin.signer.token("a" * 32)
    assert plugin.signer.record_of(token) == "a" * 32
    assert plugin.signer.record_of("b" * 32 + token[32:]) is None
    assert plugin.signer.record_of(token[:-1]) is None
    other = email_plugin(tmp_path / "other")  # another key
    assert other.signer.record_of(token) is None
    key_file = tmp_path / "emrcomm-data" / "email-unsubscribe.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_the_answer_to_a_keyword_carries_no_unsubscribe(tmp_path: Path) -> None:
    plugin = email_plugin(tmp_path)
    answer = Message(Request("Patient/1", "help-reply", text="x", in_response_to="r"), "x")
    assert sent_mail(plugin, tmp_path, answer, "k5")["List-Unsubscribe"] is None


def test_email_without_the_misdirection_footer_warns(tmp_path: Path) -> None:
    plugin = email_plugin(tmp_path, misdirection_footer=False)
    [channel] = plugin.emrcomm_register_channels()
    [f] = plugin.emrcomm_validate(message(), channel)
    assert f.code == "EMAIL_MISDIRECTION_NOTICE" and not f.blocks
    own = message("See you at 10:30. If you received this message in error, please call us.")
    assert plugin.emrcomm_validate(own, channel) == []


class _LoneChannel:
    def __init__(self, context: object) -> None:
        self.clock = lambda: TEST_NOW

    @__import__("emrcomm").hookimpl
    def emrcomm_register_channels(self):  # type: ignore[no-untyped-def]
        from emrcomm import Channel

        return Channel(name="fax", secure=False, medium="FAXWRIT", transport=self)  # not in a list


def test_a_plugin_that_registers_a_lone_channel_is_named_at_start_up(tmp_path: Path) -> None:
    from emrcomm.config import load_config
    from emrcomm.host import Host
    from emrcomm.plugin.manager import discover
    from support import write_config

    eps = {**discover(), "fax": metadata.EntryPoint(name="fax", value="test_channels:_LoneChannel", group="emrcomm")}
    with pytest.raises(PluginError, match=r"plugin 'fax': emrcomm_register_channels returned Channel, "
                                          r"not a list of emrcomm\.Channel"):
        Host(load_config(write_config(tmp_path, "\n[plugins.fax]\n")), entry_points=eps)
