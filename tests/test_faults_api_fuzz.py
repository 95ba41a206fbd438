"""Fuzz the local cloud's API from outside with Hypothesis: whatever a client sends, to whatever route, the answer
is a status a client can act on — never a 5xx — and every refusal is a JSON object with a string "error".

Bodies are JSON text written here fragment by fragment, so that they can hold what `json.dumps` never writes:
integers of thousands of digits, NaN/Infinity, lone surrogate escapes, duplicate keys, deep nesting; next to them
the routes' own fields with values of every type, raw bytes, and wrong content types. The run is bounded
(derandomized, no example database) so CI sees the same examples every time.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tlfif_common.jobs import PARAM_NAMES, REQUEST_FIELDS, ROLES
from tlfif_common.keepwarm import REQUEST_FIELDS as KEEPWARM_FIELDS
from tlfif_router.routes import ROUTES

from support.local_cloud import RELAXED_THROTTLE, CloudProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ALLOWED = {200, 202, 400, 401, 403, 404, 405, 413, 429}
BODY_ROUTES = ("POST /infer", "POST /keepwarm")  # the routes that parse a body get the most examples
EXAMPLES_BODY_ROUTE, EXAMPLES_OTHER = 150, 50  # about 45 s in all on a busy 2-core machine


def bounded(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])
# Every field name a route knows, so that generated objects reach the validators behind the unknown-field check.
FIELD_NAMES = sorted({*REQUEST_FIELDS, *KEEPWARM_FIELDS, *PARAM_NAMES, "role", "content"})


# --- JSON text, fragment by fragment ---------------------------------------------------------------------------
def _dumps(value) -> str:
    return json.dumps(value)  # NaN and ±Infinity come out as the non-JSON words they are


huge_int = st.builds(lambda sign, n: sign + "9" * n, st.sampled_from(["", "-"]), st.integers(4290, 6000))
odd_number = st.sampled_from(["1e999", "-1e999", "1e-999", "NaN", "Infinity", "-Infinity", "9223372036854775808",
                              "-0", "0.0", "1E+2", "18446744073709551616", "2.5"])
lone_surrogate = st.builds(lambda prefix, code: _dumps(prefix)[:-1] + f"\\u{code:04x}\"",
                           st.text(max_size=20), st.integers(0xD800, 0xDFFF))
scalar = st.one_of(
    st.none().map(_dumps), st.booleans().map(_dumps), st.integers().map(_dumps),
    st.floats(allow_nan=True, allow_infinity=True).map(_dumps), st.text(max_size=200).map(_dumps),
    st.sampled_from(list(ROLES)).map(_dumps), huge_int, odd_number, lone_surrogate)
key = st.one_of(st.sampled_from(FIELD_NAMES).map(_dumps), st.text(max_size=30).map(_dumps), lone_surrogate)


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"


json_text = st.recursive(
    scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=6).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(key, children), max_size=6).map(_object)),  # keys may repeat: duplicates
    max_leaves=25)
deep = st.builds(lambda n, open_, close: open_ * n + close * n, st.integers(10, 5000),
                 st.just("["), st.just("]")) | st.integers(10, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n)


@st.composite
def route_object(draw) -> str:
    """An object with the routes' own field names (some of them), each holding any JSON."""
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=6))
    return _object([(_dumps(name), draw(json_text)) for name in names])


hostile = st.one_of(huge_int, odd_number, lone_surrogate, json_text)
turn = st.fixed_dictionaries({"role": st.sampled_from(list(ROLES)).map(_dumps),
                              "content": st.text(max_size=40).map(_dumps)})
params = st.fixed_dictionaries({}, optional={
    "temperature": st.floats(-1, 3).map(_dumps), "max_tokens": st.integers(-5, 5000).map(_dumps),
    "system": st.text(max_size=40).map(_dumps)})
near_valid = st.one_of(  # a request as the app sends it, sometimes with one value made hostile
    st.fixed_dictionaries({"prompt": st.text(min_size=1, max_size=60).map(_dumps),
                           "idle": st.integers(0, 31).map(_dumps)},
                          optional={"messages": st.lists(turn.map(lambda t: _object(list(t.items()))), max_size=3)
                                    .map(lambda items: "[" + ",".join(items) + "]"),
                                    "params": params.map(lambda p: _object(list(p.items())))}),
    st.fixed_dictionaries({"on": st.booleans().map(_dumps)},
                          optional={"max_minutes": st.integers(-1, 500).map(_dumps)}))


@st.composite
def near_valid_object(draw) -> str:
    fields = draw(near_valid)
    if fields and draw(st.booleans()):
        fields[draw(st.sampled_from(sorted(fields)))] = draw(hostile)
    return _object([(_dumps(name), value) for name, value in fields.items()])


body_text = st.one_of(near_valid_object(), route_object(), json_text, deep, st.text(max_size=300))
body = st.one_of(body_text.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=500),
                 st.just(b""))
content_type = st.one_of(
    st.just("application/json"), st.just(None),
    st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                     "application/json; charset=latin-1", "application/json; charset=utf-8", "*/*", ""]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip))
job_id = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=80).map(lambda t: quote(t, safe="")))


# --- the cloud under test ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory):
    """A cloud of its own whose throttles stay out of the way: the fuzz is about bodies, not rates."""
    cloud = CloudProcess.start(["--boot-seconds", "1", "--user-rps", "100000", *RELAXED_THROTTLE],
                               Path(tmp_path_factory.mktemp("fuzz-cloud")))
    cloud.token("fuzzer")
    yield cloud
    cloud.stop()


def check(answer: requests.Response, what: str) -> None:
    event(f"HTTP {answer.status_code}")  # `pytest --hypothesis-show-statistics` shows what the fuzz reached
    assert answer.status_code in ALLOWED, f"{what}: {answer.status_code} {answer.text[:300]}"
    if answer.status_code >= 400:
        try:
            doc = answer.json()
        except ValueError:
            raise AssertionError(f"{what}: {answer.status_code} without a JSON body: {answer.text[:300]!r}") from None
        assert isinstance(doc, dict) and isinstance(doc.get("error"), str), f"{what}: {doc!r}"[:400]


def send_any_body(cloud: CloudProcess, route_key: str, data, payload: bytes, ctype: str | None) -> None:
    method, template = route_key.split(" ", 1)
    path = template.replace("{id}", data.draw(job_id, label="id"))
    headers = {"Authorization": f"Bearer {cloud.token('fuzzer')}"}
    if ctype is not None:
        headers["Content-Type"] = ctype
    answer = cloud.http.request(method, cloud.info["api_url"] + path, data=payload, headers=headers, timeout=30)
    check(answer, f"{route_key} {payload[:120]!r} ({ctype!r})")


@pytest.mark.parametrize("route_key", BODY_ROUTES)
@bounded(EXAMPLES_BODY_ROUTE)
@given(data=st.data(), payload=body, ctype=content_type)
def test_any_body_to_a_json_route_is_never_a_5xx(fuzz_cloud, route_key, data, payload, ctype):
    send_any_body(fuzz_cloud, route_key, data, payload, ctype)


@pytest.mark.parametrize("route_key", sorted(set(ROUTES) - set(BODY_ROUTES)))
@bounded(EXAMPLES_OTHER)
@given(data=st.data(), payload=body, ctype=content_type)
def test_any_body_or_id_to_the_other_routes_is_never_a_5xx(fuzz_cloud, route_key, data, payload, ctype):
    send_any_body(fuzz_cloud, route_key, data, payload, ctype)


@bounded(EXAMPLES_OTHER)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       path=st.text(max_size=40).map(lambda t: "/" + quote(t, safe="/")), payload=body,
       with_token=st.booleans())
def test_any_method_and_path_is_never_a_5xx(fuzz_cloud, method, path, payload, with_token):
    headers = {"Authorization": f"Bearer {fuzz_cloud.token('fuzzer')}"} if with_token else {}
    answer = fuzz_cloud.http.request(method, fuzz_cloud.info["api_url"] + path, data=payload, headers=headers,
                                     timeout=30)
    check(answer, f"{method} {path} {payload[:120]!r}")
