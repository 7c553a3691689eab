"""The DNS presentation codec (domain/dns.py) where mutation testing found it unpinned (docs/testing.md).

tests/test_zone.py proves the codec round-trips; these pin what the round trips never reach:
the program spelling of 8-bit labels (lone surrogates from ``surrogateescape``), the root, a
trailing dot on each path, the printable-ASCII bounds of a label, and every error message whole
(the 60-character cut of a long name included).
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.domain.dns import (
    DnsTextError,
    canonical_name,
    canonical_value,
    check_record,
    display,
    ipv4_text,
    labels_to_name,
    name_key,
    name_to_labels,
    parse_mx,
    presentation_to_raw,
    raw_name,
    text_to_bytes,
    txt_strings,
)

# -- 8-bit labels in the program spelling: raw_name → name_key and back ---------------------------------


def test_an_8bit_label_survives_the_program_spelling() -> None:
    raw = raw_name((b"\xff", b"A\xe9", b"example"))
    assert raw == "\udcff.a\udce9.example"  # bytes that are not UTF-8 become lone surrogates, lower-cased
    assert name_key(raw) == r"\255.a\233.example"
    assert name_to_labels(raw) == (b"\xff", b"a\xe9", b"example")
    assert presentation_to_raw(r"\255.a\233.example") == raw
    assert display("a\udcffb") == r"a\255b"  # terminal-safe: the byte by value


def test_the_root_in_every_spelling() -> None:
    assert (raw_name(()), labels_to_name([]), name_to_labels("."), name_to_labels("")) == (".", ".", (), ())
    assert (name_key("."), name_key("Example.")) == (".", "example")


def test_a_trailing_dot_is_dropped_on_the_plain_and_the_escaped_path() -> None:
    assert name_to_labels("a.Example.") == (b"a", b"Example")
    assert name_key("Mail.Example.") == "mail.example"
    assert name_key("A B.Example.") == r"a\032b.example"  # a space: the escaping path
    assert name_key("é.") == r"\195\169"
    assert name_key("é") == r"\195\169"


def test_name_key_reads_a_backslash_as_a_character() -> None:
    assert name_key(r"a\b.Example") == r"a\\b.example"
    assert name_key(r"a\.b.example") == r"a\\.b.example"  # the dot still separates: labels 'a\' and 'b'


def test_printable_ascii_stays_in_a_label_from_bang_to_tilde() -> None:
    assert labels_to_name([b"!~", b" \x7f", b"a.b", b"\\"]) == r"!~.\032\127.a\.b.\\"


# -- errors, whole -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    (r"a\065..b", r"empty label in 'a\065..b'"),
    ("a\\", r"a lone '\' at the end (write '\\' for a backslash) in 'a\'"),
    ("a\\5", r"'\5' at character 2: a byte escape is '\' and exactly three digits (\000-\255) in 'a\5'"),
    (r"a\0.b", r"'\0.b' at character 2: a byte escape is '\' and exactly three digits (\000-\255) in 'a\0.b'"),
    ("é\\04.x", r"'\04.' at character 2: a byte escape is '\' and exactly three digits (\000-\255) in 'é\04.x'"),
    ("x" * 58 + "\\9", "'\\9' at character 59: a byte escape is '\\' and exactly three digits (\\000-\\255) in '"
     + "x" * 58 + "\\9'"),  # 60 characters: shown whole
    ("x" * 59 + "\\9", "'\\9' at character 60: a byte escape is '\\' and exactly three digits (\\000-\\255) in '"
     + "x" * 57 + "...'"),  # 61: cut to 57 and an ellipsis
])
def test_bad_escapes_in_names_are_refused_with_the_whole_message(text: str, message: str) -> None:
    with pytest.raises(DnsTextError) as e:
        name_to_labels(text)
    assert str(e.value) == message


# -- MX values -----------------------------------------------------------------------------------------


def test_mx_preference_bounds_and_hosts() -> None:
    assert parse_mx("65535 MX.Example.") == (65535, "mx.example")
    assert parse_mx("0 .") == (0, ".")
    assert parse_mx("10 é.example") == (10, r"\195\169.example")  # any host bytes, escaped


@pytest.mark.parametrize(("value", "message"), [
    ("65536 mx.example", "MX preference must be 0..65535, got 65536"),
    ("ten mx.example", "MX value must be 'PREFERENCE HOST', got 'ten mx.example'"),
    ("10", "MX value must be 'PREFERENCE HOST', got '10'"),
    ("\u0661\u0660 mx.example", "MX value must be 'PREFERENCE HOST', got '\u0661\u0660 mx.example'"),  # not ASCII
    ("10 mx.example extra", "MX value must be 'PREFERENCE HOST', got '10 mx.example extra'"),
    ("10 a..b", "MX host: empty label in 'a..b'"),
])
def test_bad_mx_values_are_refused_with_the_whole_message(value: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_mx(value)
    assert str(e.value) == message


# -- lone surrogates through the text codec (every chunk of text_to_bytes) ------------------------------


def test_lone_surrogates_decode_to_their_bytes_on_every_path() -> None:
    assert text_to_bytes("a\udcff") == b"a\xff"  # no escape at all
    assert text_to_bytes("a\\065\udcff") == b"aA\xff"  # plain text after an escape
    assert text_to_bytes("\\\udcff") == b"\xff"  # an escaped character
    assert txt_strings(("", "x", "")) == (b"", b"x", b"")  # an empty string is kept, and so is what follows


def test_a_byte_escape_over_255_names_its_place() -> None:
    with pytest.raises(DnsTextError) as e:
        text_to_bytes(r"ab\256")
    assert str(e.value) == r"'\256' at character 3: a byte is \000-\255 in 'ab\256'"


# -- names: the root, and what a record value may be ---------------------------------------------------


def test_a_star_label_is_a_wildcard_only_in_an_owner_name() -> None:
    assert canonical_name("A.*.Example") == "a.*.example"  # a target: '*' is just a label
    with pytest.raises(DnsTextError) as e:
        canonical_name("A.*.Example", wildcard=True)
    assert str(e.value) == "a '*' label is a wildcard only as the leftmost label of a record name: 'A.*.Example'"
    assert check_record("CNAME", "x.*.example") is None


def test_the_root_is_a_name_only_where_allowed() -> None:
    for text in (".", "", " "):
        with pytest.raises(DnsTextError) as e:
            canonical_name(text)
        assert str(e.value) == "an empty name"
        assert canonical_name(text, root=True) == "."


@pytest.mark.parametrize("text", ["..", "a..", "a...", "a..b", ".a", "a\\..."])
def test_an_empty_label_is_refused_even_at_the_end(text: str) -> None:
    """One trailing dot makes a name absolute; a second one is an empty label (dnspython: EmptyLabel)."""
    for root in (False, True):
        with pytest.raises(DnsTextError) as e:
            canonical_name(text, root=root)
        assert str(e.value) == f"empty label in '{text}'"


def test_one_trailing_dot_is_absolute_and_an_escaped_dot_is_not_one() -> None:
    assert canonical_name("A.Example.") == canonical_name("a.example") == "a.example"
    assert canonical_name("a\\.") == "a\\."  # one label "a." (an escaped dot), relative
    assert canonical_name("a\\..") == "a\\."  # the same label, then the one trailing dot


@pytest.mark.parametrize(("rtype", "value", "problem"), [
    ("BOGUS", "x", "unsupported record type 'BOGUS' (use one of A, AAAA, MX, TXT, SPF, CNAME, PTR, NS)"),
    ("TXT", ("a", 1), "TXT strings must be text"),
    ("A", ("192.0.2.1",), "only TXT and SPF records may hold several strings, not A"),
    ("A", "x", "A value must be an IPv4 address, got 'x'"),
    ("a", "2001:db8::1", "A value must be an IPv4 address, got '2001:db8::1'"),
    ("AAAA", "192.0.2.1", "AAAA value must be an IPv6 address, got '192.0.2.1'"),
    ("AAAA", "fe80::1%eth0", "AAAA value must be an IPv6 address, got 'fe80::1%eth0'"),  # no zone index
    ("MX", "x", "MX value must be 'PREFERENCE HOST', got 'x'"),
    ("CNAME", "a..b", "CNAME value must be a DNS name: empty label in 'a..b'"),
    ("ns", "a..b", "NS value must be a DNS name: empty label in 'a..b'"),
    ("PTR", ".", None),  # the root is a name a record may point to
    ("CNAME", "a.example.", None),
    ("AAAA", " 2001:DB8::1 ", None),
])
def test_check_record_says_why_a_value_is_unusable(rtype: str, value: str | tuple[str, ...],
                                                   problem: str | None) -> None:
    assert check_record(rtype, value) == problem


def test_canonical_values() -> None:
    assert canonical_value("A", " 192.0.2.1 ") == "192.0.2.1"
    assert canonical_value("aaaa", "2001:DB8:0::1") == "2001:db8::1"
    assert canonical_value("PTR", ".") == "."
    assert canonical_value("cname", "Host.Example.") == "host.example"
    assert canonical_value("MX", "010 MX.Example.") == "10 mx.example"
    assert canonical_value("TXT", ("a\\065", "b")) == ("aA", "b")
    assert canonical_value("spf", "x\\000") == "x\\000"


# -- the IPv4 fast path: the canonical spelling decided without ipaddress ---------------------------------


@given(st.integers(0, 2**32 - 1))
def test_every_canonical_ipv4_address_is_recognised(n: int) -> None:
    text = str(ipaddress.IPv4Address(n))
    assert ipv4_text(text) == text
    assert canonical_value("A", f" {text} ") == text and check_record("A", text) is None


_octetish = st.text(alphabet="0123456789٣.x -", max_size=5)


@given(st.lists(_octetish, min_size=1, max_size=6).map(".".join))
def test_ipv4_text_accepts_only_what_ipaddress_spells_the_same(text: str) -> None:
    """Never a false yes (leading zeros, 256, non-ASCII digits, empty or extra octets): None hands it to ipaddress."""
    try:
        canonical: str | None = str(ipaddress.IPv4Address(text))
    except ValueError:
        canonical = None
    assert ipv4_text(text) == (text if canonical == text else None)


@pytest.mark.parametrize("text", ["01.2.3.4", "1.2.3.256", "1.2.3", "1.2.3.4.5", "1..3.4", "١.2.3.4", "1.2.3.4 "])
def test_ipv4_text_leaves_every_other_spelling_to_ipaddress(text: str) -> None:
    assert ipv4_text(text) is None


@given(st.lists(st.binary(max_size=70), min_size=1, max_size=4))
def test_a_label_escapes_exactly_dot_backslash_and_what_is_not_printable_ascii(labels: list[bytes]) -> None:
    """The presentation rule octet by octet (RFC 1035 §5.1), against the fast path for plain labels."""
    def octet(b: int) -> str:
        if b in (0x2E, 0x5C):
            return "\\" + chr(b)
        return chr(b) if 0x21 <= b <= 0x7E else f"\\{b:03d}"

    assert labels_to_name(labels) == ".".join("".join(octet(b) for b in lab.lower()) for lab in labels)
