"""Stored JSON packed small: raw deflate with a preset dictionary of the words the format
repeats (its keys, stock values), one byte in front naming the dictionary.

A value that starts with ``{`` is JSON as is (what older releases wrote, and what a new one
writes when packing would not make it smaller). Any other first byte is the id of a
dictionary below; dictionaries are never changed once released, only added.
"""

from __future__ import annotations

import zlib

# A 1 KB window (wbits 10) and a small memory level: 8 µs to pack a 300-byte entry against
# 80 µs with zlib's defaults, for the same size (what is packed is far smaller than a window).
_WBITS = -10
_LEVEL = 6
_MEMLEVEL = 4

AUDIT = 1  # an audit entry's canonical JSON (emrcomm.audit)
FACTS = 2  # a record's facts (emrcomm.storage.records)

DICTIONARIES: dict[int, bytes] = {
    AUDIT: (b'"plugin":"","problem":"","reasons":[""],"status":"","until":"","error":"","client":"",'
            b'"operation":"","http_status":200,"codes":["CONSENT_REVOKED","QUIET_HOURS",""],'
            b'"channels":["portal","email","sms"],"kind":"held","kind":"queued","kind":"blocked",'
            b'"kind":"delivered","kind":"delivery.failed",'
            b'{"at":"20T:00.000000+00:00","category":"appointment-reminder","channels":["sms"],"key":"",'
            b'"kind":"channel.chosen","patient":"Patient/","prev":"","records":["'
            b'{"at":"20T:00.000000+00:00","channel":"sms","key":"","kind":"sent","prev":"","provider_id":"",'
            b'"record":"","request":"","seq":'),
    FACTS: (b'"findings":[["","warning","","","","sms",null]],"reasons":[""],"in_response_to":"",'
            b'"payload_reference":"","announced":false,"sender_name":"","based_on":"","sender":"Practitioner/",'
            b'"priority":"routine"},"medium":"EMAILWRIT","medium":"PORTALWRIT","subject":"Rappel de rendez-vous : ",'
            b'"language":"fr"," Pour modifier : R\xc3\xa9pondez ARRET pour vous d\xc3\xa9sabonner.","language":"en",'
            b'"Appointment reminder from "," appointment is on  at  a.m. p.m. To change it, call '
            b'Reply STOP to opt out.",{"v":2,"request":{"priority":"routine"},"medium":"SMSWRIT","text":"'),
}


class NewerPacking(ValueError):
    """Packed with a dictionary this release does not know, above the ones it does: a newer
    release's (dictionaries are only added). ``dictionary`` is its id."""

    def __init__(self, dictionary: int) -> None:
        super().__init__(f"packed with dictionary {dictionary}, which this version of emrcomm does not know")
        self.dictionary = dictionary


def pack(text: bytes, dictionary: int) -> bytes:
    """``text`` (JSON, starting with ``{``) packed with ``dictionary``, or as is when that is smaller."""
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, _MEMLEVEL, zlib.Z_DEFAULT_STRATEGY,
                              DICTIONARIES[dictionary])
    packed = bytes((dictionary,)) + packer.compress(text) + packer.flush()
    return packed if len(packed) < len(text) else text


def unpack(data: bytes | str) -> bytes:
    """The JSON that ``data`` holds (text as older releases stored it, or packed)."""
    if isinstance(data, str):
        return data.encode("utf-8")
    data = bytes(data)  # PostgreSQL may hand a memoryview
    if data[:1] == b"{":
        return data
    dictionary = DICTIONARIES.get(data[0])
    if dictionary is None:
        # An id is a small number: a first byte that is a printable character is stored text
        # damaged, as is an id at or below the highest known that is not one of them.
        if max(DICTIONARIES) < data[0] < 0x20:
            raise NewerPacking(data[0])
        raise ValueError(f"packed with dictionary {data[0]}, which this version of emrcomm does not know")
    unpacker = zlib.decompressobj(_WBITS, zdict=dictionary)
    return unpacker.decompress(data[1:]) + unpacker.flush()
