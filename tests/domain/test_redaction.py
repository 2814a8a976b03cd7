"""Redaction on its own: which keys and values are masked, what is kept, the caller's object."""

from __future__ import annotations

import copy
import datetime
import enum
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleveragents.domain.details import encode_details, encode_plain_details
from cleveragents.domain.redaction import (
    DEFAULT_REDACT_KEYS,
    DEFAULT_REDACT_PATTERNS,
    MASK,
    Redactor,
    compile_pattern,
)
from tests.redaction_strategies import (
    contains_secret,
    plain_keys,
    plain_values,
    plant,
    secret_values,
    sensitive_keys,
)
from tests.strategies import json_details, json_scalars, json_values

DEFAULT = Redactor(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS)

# -- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "Passwd",
        "db_password",
        "DB_PASSWORD",
        "dbPassword",
        "secret",
        "client_secret",
        "clientSecret",
        "aws.secret",
        "token",
        "access_token",
        "accessToken",
        "refresh-token",
        "accesstoken",
        "api_key",
        "X-Api-Key",
        "x-api-key",
        "openai_api_key",
        "OPENAI_API_KEY",
        "openaiApiKey",
        "APIKey",
        "apikey",
        "ApiKey2",
        "Authorization",
        "proxy-authorization",
        "cookie",
        "Set-Cookie",
        "private_key",
        "privateKey",
        "ssh private key",
        "credential",
        "aws_credential",
        "token_count",
    ],
)
def test_keys_naming_a_secret_are_masked_whole(key: str) -> None:
    """A key ending (at a word boundary) with a name: its value is the mask, whatever it is."""
    for value in ("hunter2", 123456, {"nested": "x"}, ["a", 1], None, True):
        assert DEFAULT.redact({key: value, "kept": "v"}) == {key: MASK, "kept": "v"}


@pytest.mark.parametrize(
    "key",
    [
        "tokenizer",
        "author",
        "authority",
        "secretary",
        "passwordless",
        "broken",
        "spoken",
        "cookiecutter",
        "keys",
        "key",
        "api",
        "private",
        "status",
        "query",
        "credentialing",
    ],
)
def test_keys_that_only_contain_a_name_are_not_sensitive(key: str) -> None:
    """A name must end at a word boundary: tokenizer, author and secretary are kept."""
    payload = {key: "value"}
    assert DEFAULT.redact(payload) is payload
    assert not DEFAULT.is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["tokens", "prompt_tokens", "completionTokens", "credentials", "cookies", "secrets"]
)
def test_plural_keys_keep_their_counts_and_mask_their_strings(key: str) -> None:
    """Under a plural name numbers, booleans and nulls stay; every string, at any depth, goes."""
    counts = {key: 812, "other": 1}
    assert DEFAULT.redact(counts) is counts
    nested_counts = {key: {"prompt": 1234, "completion": 256, "cached": False, "x": None}}
    assert DEFAULT.redact(nested_counts) is nested_counts
    mixed = {key: {"user": "bob", "list": ["pw1", 2, ["pw2"]], "n": 2}}
    assert DEFAULT.redact(mixed) == {key: {"user": MASK, "list": [MASK, 2, [MASK]], "n": 2}}
    assert DEFAULT.redact({key: "abc"}) == {key: MASK}


def test_keys_are_matched_at_any_depth() -> None:
    """A sensitive key deep inside dicts and lists is masked; its siblings are kept."""
    payload = {"a": [{"b": {"headers": {"Authorization": "x", "Accept": "json"}}}, 3]}
    assert DEFAULT.redact(payload) == {
        "a": [{"b": {"headers": {"Authorization": MASK, "Accept": "json"}}}, 3]
    }


def test_custom_keys_replace_the_defaults() -> None:
    """With audit_redact_keys set, only those names count (and their normalised forms)."""
    redactor = Redactor(["session-id", "PIN"], [])
    assert redactor.key_names == ("pin", "sessionid")
    assert redactor.redact({"X-Session-Id": "s", "card_pin": 1234, "password": "p"}) == {
        "X-Session-Id": MASK,
        "card_pin": MASK,
        "password": "p",
    }


def test_non_str_keys_are_left_for_validation() -> None:
    """A key that is not a str is not classified; the payload goes on to be rejected as before."""
    payload: dict[Any, Any] = {1: "x", ("t",): "y"}
    assert DEFAULT.redact(payload) is payload


# -- values --------------------------------------------------------------------------------

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer abc.def-ghi_jkl", MASK),
        ("curl -H 'Authorization: bearer abc123def' x", f"curl -H 'Authorization: {MASK}' x"),
        ("Basic dXNlcjpwYXNzd29yZA==", MASK),
        (JWT, MASK),
        (f"token={JWT}&x=1", f"{MASK}&x=1"),
        ("key sk-proj-abcdefghijklmnopqrstuvwxyz012345 used", f"key {MASK} used"),
        ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", MASK),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", MASK),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", MASK),
        ("id AKIAIOSFODNN7EXAMPLE here", f"id {MASK} here"),
        ("xoxb-1234567890-abcdefghij", MASK),
        ("AIzaSyA-1234567890abcdefghijklmnopqrstu", MASK),
        ("sk_live_abcdefghijklmnop1234", MASK),
        ("rk_test_abcdefghijklmnop1234", MASK),
        (PEM, MASK),
        ("-----BEGIN PRIVATE KEY-----\nMIIEv (cut short", MASK),
        ("postgresql://bob:hunter2@db.example/audit", f"postgresql://{MASK}@db.example/audit"),
        ("https://api.example/v1?api_key=abc123&q=2", f"https://api.example/v1?{MASK}&q=2"),
        ("host=db password=hunter2 dbname=x", f"host=db {MASK} dbname=x"),
    ],
)
def test_strings_that_look_like_secrets_are_masked(text: str, expected: str) -> None:
    """Bearer and basic credentials, JWTs and well-known key formats are masked in place."""
    assert DEFAULT.redact({"v": text}) == {"v": expected}
    assert DEFAULT.redact({"v": ["x", {"w": text}]}) == {"v": ["x", {"w": expected}]}


@pytest.mark.parametrize(
    "text",
    [
        "quarterly revenue growth ACME Corp 2024",
        "task-runner-abcdefghijklmnopqrstuvw",
        "/workspace/reports/q3.csv",
        "https://example.com/path?q=1",
        "a == b",
        "the bearer of bad news",
        "bearer bonds",
        "basic",
        "ghost_town",
        "mailto:bob@example.com",
        "AKIA",
        "eyJ",
    ],
)
def test_ordinary_strings_are_kept(text: str) -> None:
    """Text that merely contains a marker of a pattern is not masked, and not copied."""
    payload = {"v": text}
    assert DEFAULT.redact(payload) is payload


def test_custom_patterns_are_searched_in_every_string() -> None:
    """Patterns from the settings mask their matches; the built-in ones can be dropped."""
    redactor = Redactor([], [r"(?i)acct-\d{6}", r"(x)\1{3}"])
    assert redactor.redact({"a": "ACCT-123456 paid", "b": ["xxxx"], "c": JWT}) == {
        "a": f"{MASK} paid",
        "b": [MASK],
        "c": JWT,
    }


def test_a_bad_pattern_is_named() -> None:
    """An invalid regular expression raises ValueError naming it."""
    with pytest.raises(ValueError, match=r"\(unclosed"):
        compile_pattern("(unclosed")
    with pytest.raises(ValueError, match=r"\(unclosed"):
        Redactor([], ["(unclosed"])


# -- the caller's object, and what is not details ------------------------------------------


def test_nothing_to_mask_returns_the_same_object() -> None:
    """The common case makes no copy at all."""
    payload = {"tool": "web.search", "args": {"q": "x", "n": [1, 2.5, None, True]}}
    assert DEFAULT.redact(payload) is payload


def test_masking_copies_and_leaves_the_caller_object_alone() -> None:
    """The caller's dict, its nested dicts and lists, are unchanged after masking."""
    inner = {"password": "p", "list": ["Bearer abcdef123"]}
    payload = {"inner": inner, "tuple": ("Bearer abcdef123", 1)}
    before = copy.deepcopy(payload)
    redacted = DEFAULT.redact(payload)
    assert payload == before
    assert redacted == {"inner": {"password": MASK, "list": [MASK]}, "tuple": (MASK, 1)}
    assert redacted is not payload


def test_other_mappings_are_redacted_into_a_dict() -> None:
    """A read-only mapping with a secret comes back as a masked dict."""
    payload = MappingProxyType({"token": "t", "n": MappingProxyType({"secret": 1})})
    assert DEFAULT.redact(payload) == {"token": MASK, "n": {"secret": MASK}}


@pytest.mark.parametrize("details", [None, [("password", "p")], "password", 3])
def test_what_is_not_a_mapping_is_passed_through(details: Any) -> None:
    """None stays None; a non-mapping is left for validation to reject."""
    assert DEFAULT.redact(details) is details


def test_the_key_cache_is_bounded() -> None:
    """Many distinct keys do not grow the cache without bound, and verdicts stay right."""
    redactor = Redactor(DEFAULT_REDACT_KEYS, [])
    for n in range(10_000):
        assert redactor.redact({f"k{n}": 1, f"token{n}": 2}) == {f"k{n}": 1, f"token{n}": MASK}
    assert len(redactor._cache) <= 4096


# -- properties ----------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    tree=plain_values,
    key=sensitive_keys(),
    secret=secret_values,
    path=st.lists(st.integers(0, 5), max_size=4),
)
def test_no_value_under_a_sensitive_key_survives(
    tree: Any, key: str, secret: Any, path: list[int]
) -> None:
    """Whatever the nesting and the key's spelling, the value under it is the mask."""
    assert DEFAULT.is_sensitive_key(key), key
    payload = plant(tree, key, secret, path)
    before = copy.deepcopy(payload)
    redacted = DEFAULT.redact(payload)
    assert not contains_secret(redacted)
    assert payload == before  # the caller's object is untouched
    assert redacted is not None
    assert redacted["tree"] == tree  # what was not under the key is kept as it was


@PROPERTY_SETTINGS
@given(payload=st.dictionaries(plain_keys, plain_values, max_size=6))
def test_non_sensitive_payloads_are_untouched(payload: dict[str, Any]) -> None:
    """Keys that name no secret and strings with no secret in them come back as the same object."""
    assert DEFAULT.redact(payload) is payload


@PROPERTY_SETTINGS
@given(payload=json_details)
def test_any_payload_redacts_without_error_and_idempotently(payload: dict[str, Any]) -> None:
    """Any JSON details can be redacted; redacting the result again changes nothing."""
    once = DEFAULT.redact(payload)
    assert DEFAULT.redact(once) == once


@PROPERTY_SETTINGS
@given(value=json_values)
def test_every_string_under_a_plural_key_is_masked(value: Any) -> None:
    """Under ``credentials`` no string survives, at any depth; everything else is kept."""
    redacted = DEFAULT.redact({"credentials": value})
    assert redacted is not None

    def no_strings(item: object) -> bool:
        if isinstance(item, str):
            return item == MASK
        if isinstance(item, Mapping):
            return all(no_strings(v) for v in item.values())
        if isinstance(item, list | tuple):
            return all(no_strings(v) for v in item)
        return True

    assert no_strings(redacted["credentials"])


# -- one walk: masked, and whether the encoding must check the details again --------------


class _Colour(enum.StrEnum):
    RED = "red"


class _Text(str):
    __slots__ = ()


odd_scalars: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, _Colour.RED, _Text("t"), {1, 2}]),
    st.just(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)),
    st.sampled_from(["Bearer abcdefgh12345", "password=hunter2", "\ud800"]),
)
odd_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(json_scalars, odd_scalars),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=8), plain_keys), children, max_size=4),
        st.dictionaries(st.integers(0, 3), children, max_size=2),
        st.dictionaries(sensitive_keys(), children, max_size=2),
        st.dictionaries(st.text(max_size=8), children, max_size=3).map(MappingProxyType),
    ),
    max_leaves=20,
)


def _outcome(encode: Callable[[Any], str], details: Any) -> object:
    """What ``encode`` makes of ``details``: its text, or its error's type and message."""
    try:
        return encode(details)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@PROPERTY_SETTINGS
@given(payload=st.dictionaries(st.text(max_size=8), odd_values, max_size=5))
def test_redact_plain_says_plain_only_where_the_full_check_adds_nothing(
    payload: dict[str, Any],
) -> None:
    """Details said plain encode without the check exactly as with it, errors included."""
    masked, plain = DEFAULT.redact_plain(payload)
    assert masked == DEFAULT.redact(payload)
    if plain:
        assert _outcome(encode_plain_details, masked) == _outcome(encode_details, masked)


@PROPERTY_SETTINGS
@given(payload=json_details)
def test_json_details_are_plain_and_encode_the_same_either_way(payload: dict[str, Any]) -> None:
    """Plain JSON details are said plain, unless a key names a secret (the walk stops there)."""
    masked, plain = DEFAULT.redact_plain(payload)
    assert plain or any(DEFAULT.is_sensitive_key(key) for key in _keys(payload))
    assert encode_plain_details(masked) == encode_details(masked)


def _keys(value: Any) -> list[str]:
    """Every key of ``value``, at any depth."""
    if isinstance(value, dict):
        return [*value, *(key for item in value.values() for key in _keys(item))]
    if isinstance(value, list):
        return [key for item in value for key in _keys(item)]
    return []


def _nested(levels: int) -> dict[str, Any]:
    """A dict ``levels`` levels deep (itself is the first)."""
    details: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        details = {"d": details}
    return details


@pytest.mark.parametrize(
    ("details", "plain"),
    [
        (_nested(64), True),
        (_nested(65), False),
        ({"n": [1.5, math.nan]}, False),
        ({"n": math.inf}, False),
        ({"prompt_tokens": 812, "total_tokens": 1.5}, True),
        ({"tokens": [1, 2]}, False),  # under a plural name, not walked
        ({"kind": _Colour.RED}, False),
        ({"text": _Text("t")}, False),
        ({"m": MappingProxyType({"a": 1})}, False),
        (MappingProxyType({"a": 1}), False),
        ({"password": "p", "n": math.nan}, False),  # masked: the copy is checked
        ({"q": "Bearer abcdefgh12345", "t": ("a", [None, True])}, True),  # a plain copy
        (None, False),
    ],
)
def test_redact_plain_tells_what_it_walked(details: Any, plain: bool) -> None:
    """Plain: a dict of exactly the JSON types, finite, at most MAX_DETAILS_DEPTH deep."""
    assert DEFAULT.redact_plain(details)[1] is plain
