#!/usr/bin/env python3
"""Self-test for tests/mock/emulator.py (standard library only).

    python3 tests/mock/selftest.py [-v] [-k SUBSTRING]

Starts the emulator on port 0, exercises every action, the chunking modes,
the control endpoints, keep-alive, TLS (certificates from make-certs.sh),
signals, then stops it.  Last line: "N passed, M failed"; exit status 1 on
any failure.
"""

import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
EMU = os.path.join(HERE, "emulator.py")
CERTS = os.path.join(HERE, "make-certs.sh")
KEY = "sk-test-0000"
VERBOSE = "-v" in sys.argv
FILTER = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else None


# --------------------------------------------------------------------------
# Emulator process
# --------------------------------------------------------------------------

class Emu:
    def __init__(self, *args, quiet=True):
        cmd = [sys.executable, EMU, "--port", "0"] + list(args)
        if quiet:
            cmd.append("--quiet")
        self.errf = tempfile.TemporaryFile()
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errf)
        r, _, _ = select.select([self.p.stdout], [], [], 10)
        if not r:
            self.p.kill()
            raise RuntimeError("emulator did not print its port")
        line = self.p.stdout.readline().decode()
        if not line.startswith("PORT ") or not line.endswith("\n"):
            self.p.kill()
            raise RuntimeError("bad first line %r" % line)
        self.port = int(line.split()[1])
        self.first_line = line

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("emulator did not exit within %ss of signal %d" % (timeout, sig))
        rest = self.p.stdout.read()
        self.p.stdout.close()
        self.errf.seek(0)
        err = self.errf.read()
        self.errf.close()
        return rc, rest, err


EMU_MAIN = None


def port():
    return EMU_MAIN.port


# --------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------

def control(method, path, obj=None, p=None):
    data = None if obj is None else json.dumps(obj).encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (p or port(), path), data=data,
                                 method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def script(*objs, p=None):
    st, body = control("POST", "/_emu/script", list(objs), p=p)
    assert st == 200, (st, body)


def reset(p=None):
    st, _ = control("POST", "/_emu/reset", p=p)
    assert st == 200


def chat_body(model="gpt-4o", stream=False, usage=False, content="hello there", **kw):
    b = {"model": model, "messages": [{"role": "system", "content": "be terse"},
                                      {"role": "user", "content": content}]}
    if stream:
        b["stream"] = True
    if usage:
        b["stream_options"] = {"include_usage": True}
    b.update(kw)
    return b


def post(path="/v1/chat/completions", body=None, key=KEY, ctype="application/json",
         conn=None, headers=None, p=None, timeout=10):
    """POST and return (status, {lower header: value}, body bytes)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", p or port(), timeout=timeout)
    h = {}
    if ctype:
        h["Content-Type"] = ctype
    if key is not None:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    data = body if isinstance(body, (bytes, str)) else json.dumps(body if body is not None
                                                                  else chat_body())
    conn.request("POST", path, body=data, headers=h)
    r = conn.getresponse()
    out = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if own:
        conn.close()
    return r.status, hdrs, out


def chat(model="gpt-4o", **kw):
    st, h, b = post(body=chat_body(model, **kw))
    return st, h, b


def raw_exchange(data, p=None, timeout=10, sock=None):
    """Send raw bytes, read until the server closes. Returns (bytes, eof_kind)."""
    s = sock or socket.create_connection(("127.0.0.1", p or port()), timeout=timeout)
    s.sendall(data)
    buf = b""
    kind = "eof"
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except ConnectionResetError:
        kind = "reset"
    except socket.timeout:
        kind = "timeout"
    s.close()
    return buf, kind


def raw_post(body, path="/v1/chat/completions", key=KEY, extra=b"", close=True):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    req = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           + (b"Authorization: Bearer " + key.encode() + b"\r\n" if key else b"")
           + (b"Connection: close\r\n" if close else b"") + extra
           + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return req


def split_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def dechunk(body):
    """Return (list of chunk payloads, complete?)."""
    chunks, pos = [], 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return chunks, False
        size = int(body[pos:eol].split(b";")[0], 16)
        if size == 0:
            return chunks, body[eol + 2:eol + 4] == b"\r\n"
        start = eol + 2
        if len(body) < start + size + 2:
            chunks.append(body[start:start + size])
            return chunks, False
        chunks.append(body[start:start + size])
        assert body[start + size:start + size + 2] == b"\r\n", "bad chunk framing"
        pos = start + size + 2


def sse(data):
    """Parse an OpenAI SSE byte stream into a list of JSON objects / '[DONE]'."""
    out = []
    text = data.decode("utf-8")
    assert text.endswith("\n\n") or not text, "stream does not end with a blank line"
    for ev in text.split("\n\n"):
        if not ev:
            continue
        for line in ev.split("\n"):
            if line.startswith(":"):
                continue
            assert line.startswith("data: "), "bad SSE line %r" % line
            v = line[6:]
            out.append(v if v == "[DONE]" else json.loads(v))
    return out


def stream_request(body_obj, **kw):
    raw, kind = raw_exchange(raw_post(body_obj, **kw))
    st, h, body = split_response(raw)
    chunks, complete = dechunk(body) if h.get("transfer-encoding") == "chunked" else ([body], True)
    return st, h, chunks, complete, kind


def stream_text(events):
    text, reasoning = "", ""
    for e in events:
        if e == "[DONE]" or not e.get("choices"):
            continue
        d = e["choices"][0]["delta"]
        text += d.get("content") or ""
        reasoning += d.get("reasoning") or ""
    return text, reasoning


def eq(a, b, what=""):
    assert a == b, "%s: expected %r, got %r" % (what, b, a)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def startup_line_and_health():
    assert EMU_MAIN.first_line == "PORT %d\n" % port()
    eq(control("GET", "/_emu/health"), (200, {"ok": True}), "health")


@test
def default_success_shape():
    reset()
    st, h, b = chat("gpt-4o", content="one two three four")
    eq(st, 200, "status")
    assert h["content-type"].startswith("application/json")
    eq(int(h["content-length"]), len(b), "content-length")
    j = json.loads(b)
    eq(j["id"], "chatcmpl-emu-1", "id")
    eq(j["object"], "chat.completion", "object")
    assert isinstance(j["created"], int)
    eq(j["model"], "gpt-4o", "model")
    eq(j["choices"], [{"index": 0, "message": {"role": "assistant",
                                               "content": "Hello from gpt-4o!",
                                               "refusal": None, "annotations": []},
                       "logprobs": None, "finish_reason": "stop"}], "choices")
    eq(j["usage"], {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                  "accepted_prediction_tokens": 0,
                                                  "rejected_prediction_tokens": 0}}, "usage")
    eq(j["service_tier"], "default", "service_tier")
    eq(j["system_fingerprint"], "fp_emu", "fingerprint")


@test
def path_prefixes():
    for path in ("/v1/chat/completions", "/api/v1/chat/completions",
                 "/openai/v1/chat/completions", "/chat/completions"):
        st, _, b = post(path)
        eq(st, 200, path)
        eq(json.loads(b)["choices"][0]["message"]["content"], "Hello from gpt-4o!", path)
    st, _, b = post("/v1/nope")
    eq(st, 404, "unknown path")
    eq(json.loads(b)["error"]["type"], "invalid_request_error", "404 type")


@test
def auth_errors():
    st, _, b = post(key=None)
    eq(st, 401, "no key")
    e = json.loads(b)["error"]
    assert e["message"].startswith("You didn't provide an API key."), e
    eq((e["type"], e["param"], e["code"]), ("invalid_request_error", None, None), "no key body")
    st, _, b = post(headers={"Authorization": "Bearer "}, key=None)
    eq(st, 401, "empty bearer")
    st, _, b = post(headers={"Authorization": "Basic abc"}, key=None)
    eq(st, 401, "basic auth")
    st, _, b = post(key="bad-key")
    eq(st, 401, "bad-key")
    e = json.loads(b)["error"]
    assert e["message"].startswith("Incorrect API key provided: bad-key."), e
    eq((e["type"], e["param"], e["code"]), ("invalid_request_error", None, "invalid_api_key"),
       "bad key body")


@test
def validation_errors():
    def err(body, ctype="application/json"):
        st, _, b = post(body=body, ctype=ctype)
        return st, json.loads(b)["error"]

    st, e = err(b"{not json")
    eq(st, 400, "bad json")
    assert e["message"].startswith("We could not parse the JSON body of your request"), e
    eq(e["type"], "invalid_request_error", "type")
    st, e = err(json.dumps(chat_body()), ctype="text/plain")
    eq(st, 400, "content-type")
    st, e = err(json.dumps(chat_body()), ctype=None)
    eq(st, 400, "no content-type")
    st, e = err(b"")
    eq(st, 400, "empty body")
    st, e = err(b"[1,2]")
    eq(st, 400, "array body")
    st, e = err(b"[" * 100000)
    eq(st, 400, "deep nesting")
    st, e = err({"messages": [{"role": "user", "content": "x"}]})
    eq(st, 400, "missing model")
    st, e = err({"model": 5, "messages": [{"role": "user", "content": "x"}]})
    eq((st, e["param"]), (400, "model"), "model type")
    st, e = err({"model": "m"})
    eq((st, e["param"]), (400, "messages"), "missing messages")
    st, e = err({"model": "m", "messages": []})
    eq((st, e["param"]), (400, "messages"), "empty messages")
    st, e = err({"model": "m", "messages": "hi"})
    eq((st, e["param"]), (400, "messages"), "messages type")
    st, e = err({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "bot"}]})
    eq((st, e["param"], e["type"]), (400, "messages[1].role", "invalid_request_error"), "role")
    st, e = err({"model": "m", "messages": [{"content": "x"}]})
    eq((st, e["param"]), (400, "messages[0].role"), "missing role")
    st, e = err({"model": "m", "messages": ["x"]})
    eq((st, e["param"]), (400, "messages[0]"), "message type")
    for role in ("system", "developer", "user", "assistant", "tool"):
        st, _, _ = post(body={"model": "m", "messages": [{"role": role, "content": "x"}]})
        eq(st, 200, role)


@test
def script_steps_then_default():
    reset()
    script({"model": "m1", "steps": [{"kind": "error", "preset": "rate_limit",
                                      "headers": {"Retry-After": "7"}},
                                     {"kind": "ok", "text": "second"}],
            "default": {"kind": "ok", "text": "always"}})
    st, h, b = chat("m1")
    eq(st, 429, "step 1")
    eq(h.get("retry-after"), "7", "retry-after")
    e = json.loads(b)["error"]
    eq((e["type"], e["code"]), ("requests", "rate_limit_exceeded"), "rate limit body")
    assert e["message"].startswith("Rate limit reached for m1"), e
    eq(json.loads(chat("m1")[2])["choices"][0]["message"]["content"], "second", "step 2")
    eq(json.loads(chat("m1")[2])["choices"][0]["message"]["content"], "always", "default")
    eq(json.loads(chat("m1")[2])["choices"][0]["message"]["content"], "always", "default 2")
    eq(json.loads(chat("other")[2])["choices"][0]["message"]["content"], "Hello from other!",
       "unscripted")
    # Re-scripting replaces (and restarts) the script; no default -> normal success.
    script({"model": "m1", "steps": [{"kind": "error", "preset": "overloaded"}]})
    eq(chat("m1")[0], 503, "replaced step")
    eq(json.loads(chat("m1")[2])["choices"][0]["message"]["content"], "Hello from m1!",
       "no default")
    # A single object (not a list) is accepted too.
    st, body = control("POST", "/_emu/script", {"model": "m2", "steps": [{"kind": "error"}]})
    eq((st, body["ok"]), (200, True), "single object")
    eq(chat("m2")[0], 500, "error without preset")


@test
def script_rejects_bad_actions():
    for bad in ({"model": "x", "steps": [{"kind": "explode"}]},
                {"model": "x", "steps": [{"kind": "error", "preset": "nope"}]},
                {"model": "x", "steps": [{"chunking": "lines"}]},
                {"model": "x", "steps": "notalist"},
                {"steps": []},
                [1, 2]):
        st, body = control("POST", "/_emu/script", bad)
        eq((st, body["ok"]), (400, False), "bad script %r" % (bad,))
    st, _ = control("GET", "/_emu/nope")
    eq(st, 404, "unknown control")
    st, _ = control("GET", "/_emu/reset")
    eq(st, 405, "wrong control method")


@test
def error_presets():
    reset()
    expect = {
        "rate_limit": (429, "requests", "rate_limit_exceeded"),
        "quota": (429, "insufficient_quota", "insufficient_quota"),
        "server_error": (500, "server_error", None),
        "overloaded": (503, "server_error", None),
        "bad_gateway": (502, "cf_bad_gateway", 502),
        "invalid_request": (400, "invalid_request_error", "decimal_above_max_value"),
        "context_length": (400, "invalid_request_error", "context_length_exceeded"),
        "auth": (401, "invalid_request_error", "invalid_api_key"),
        "permission": (403, "request_forbidden", "unsupported_country_region_territory"),
        "not_found": (404, "invalid_request_error", "model_not_found"),
        "credits": (402, None, 402),
        "timeout": (408, "timeout", "request_timeout"),
    }
    script({"model": "errs", "steps": [{"kind": "error", "preset": p} for p in expect]})
    for p, (status, type_, code) in expect.items():
        st, h, b = chat("errs")
        e = json.loads(b)["error"]
        eq((st, e.get("type"), e.get("code")), (status, type_, code), p)
        assert h["content-type"].startswith("application/json")
    # messages that quote the model / key
    script({"model": "gone", "steps": [{"kind": "error", "preset": "not_found"},
                                       {"kind": "error", "preset": "overloaded"},
                                       {"kind": "error", "preset": "context_length"},
                                       {"kind": "error", "preset": "auth"},
                                       {"kind": "error", "preset": "credits"}]})
    e = json.loads(chat("gone")[2])["error"]
    eq(e["message"], "The model `gone` does not exist or you do not have access to it.", "404")
    e = json.loads(chat("gone")[2])["error"]
    eq(e["message"], "The server is overloaded or not ready yet.", "503")
    e = json.loads(chat("gone")[2])["error"]
    assert e["message"].startswith("This model's maximum context length is "), e
    st, _, b = post(body=chat_body("gone"), key="sk-test-abcdefgh-0000")
    msg = json.loads(b)["error"]["message"]
    assert "sk-te****0000" in msg and "abcdefgh" not in msg, msg
    j = json.loads(chat("gone")[2])
    eq(j, {"error": {"code": 402, "message": j["error"]["message"], "metadata": {}}}, "402")
    assert j["error"]["message"].startswith("Insufficient credits"), j


@test
def error_status_override_and_body():
    reset()
    script({"model": "e", "steps": [
        {"kind": "error", "preset": "overloaded", "status": 529},
        {"kind": "error", "status": 503, "body": {"error": {"message": "custom"}}},
        {"kind": "error", "status": 401, "body": "{\"message\":\"Unauthorized\"}"},
        {"kind": "error", "status": 429},
        {"kind": "error", "preset": "quota", "headers": [["X-Should-Retry", "false"]]},
    ]})
    st, _, b = chat("e")
    eq((st, json.loads(b)["error"]["message"]),
       (529, "The server is overloaded or not ready yet."), "override")
    st, _, b = chat("e")
    eq((st, json.loads(b)), (503, {"error": {"message": "custom"}}), "verbatim object")
    st, _, b = chat("e")
    eq((st, b), (401, b"{\"message\":\"Unauthorized\"}"), "verbatim string")
    st, _, b = chat("e")
    eq((st, json.loads(b)["error"]["code"]), (429, "rate_limit_exceeded"), "preset from status")
    st, h, b = chat("e")
    eq((st, h.get("x-should-retry")), (429, "false"), "header list")


@test
def ok_options():
    reset()
    usage = {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33,
             "prompt_tokens_details": {"cached_tokens": 5, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 7, "audio_tokens": 0,
                                           "accepted_prediction_tokens": 0,
                                           "rejected_prediction_tokens": 0}, "cost": 0.5}
    tcs = [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
           {"id": "call_2", "type": "function",
            "function": {"name": "get_time", "arguments": {"tz": "UTC"}}}]
    script({"model": "o", "steps": [
        {"kind": "ok", "text": "hi", "finish_reason": "length", "usage": usage, "id": "my-id",
         "headers": {"X-Extra": "1"}, "body_prefix": "  \n\n", "reasoning": "think think"},
        {"kind": "ok", "tool_calls": tcs},
        {"kind": "ok", "text": None},
        {"kind": "ok", "text": "caf\u00e9 \u2603 \U0001F600"},
    ]})
    st, h, b = chat("o")
    eq(st, 200, "status")
    eq(h.get("x-extra"), "1", "extra header")
    assert b.startswith(b"  \n\n{"), b[:10]
    j = json.loads(b)
    eq(j["id"], "my-id", "id")
    eq(j["usage"], usage, "verbatim usage")
    eq(j["choices"][0]["finish_reason"], "length", "finish_reason")
    eq(j["choices"][0]["message"]["reasoning"], "think think", "reasoning")
    eq(j["choices"][0]["message"]["content"], "hi", "content")
    assert "tool_calls" not in j["choices"][0]["message"]
    j = json.loads(chat("o")[2])
    m = j["choices"][0]["message"]
    eq(m["content"], None, "tool content")
    eq(j["choices"][0]["finish_reason"], "tool_calls", "tool finish")
    eq(m["tool_calls"][0], tcs[0], "tool call 0")
    eq(m["tool_calls"][1]["function"]["arguments"], "{\"tz\":\"UTC\"}", "object arguments")
    j = json.loads(chat("o")[2])
    eq(j["choices"][0]["message"]["content"], None, "null text")
    st, h, b = chat("o")
    assert "caf\u00e9".encode() in b, "raw UTF-8 expected"
    eq(json.loads(b)["choices"][0]["message"]["content"], "caf\u00e9 \u2603 \U0001F600", "utf8")


@test
def big_action():
    reset()
    script({"model": "big", "steps": [{"kind": "big", "bytes": 1000000},
                                      {"kind": "big", "bytes": 100000}]})
    st, h, b = chat("big")
    eq(st, 200, "status")
    eq(json.loads(b)["choices"][0]["message"]["content"], "x" * 1000000, "big text")
    st, h, chunks, complete, _ = stream_request(chat_body("big", stream=True))
    assert complete
    text, _ = stream_text(sse(b"".join(chunks)))
    eq(text, "x" * 100000, "big stream")


@test
def close_action():
    reset()
    script({"model": "c", "steps": [{"kind": "close"}, {"kind": "close", "reset": True}]})
    try:
        chat("c")
        raise AssertionError("expected a disconnect")
    except (http.client.RemoteDisconnected, ConnectionError):
        pass
    raw, kind = raw_exchange(raw_post(chat_body("c")))
    eq(raw, b"", "reset close sends nothing")
    eq(kind, "reset", "RST")
    eq(chat("c")[0], 200, "next ok")


@test
def truncate_action():
    reset()
    script({"model": "t", "steps": [{"kind": "truncate"}]})
    raw, _ = raw_exchange(raw_post(chat_body("t")))
    st, h, body = split_response(raw)
    eq(st, 200, "status")
    n = int(h["content-length"])
    eq(len(body), n // 2, "half body")
    try:
        json.loads(body)
        raise AssertionError("truncated body parsed")
    except ValueError:
        pass
    script({"model": "t", "steps": [{"kind": "truncate"}]})
    try:
        chat("t")
        raise AssertionError("expected IncompleteRead")
    except http.client.IncompleteRead:
        pass


@test
def garbage_action():
    reset()
    script({"model": "g", "steps": [{"kind": "garbage"}]})
    st, h, b = chat("g")
    eq(st, 200, "status")
    eq(h["content-type"], "application/json", "ctype")
    assert b.startswith(b"<html>"), b[:20]
    try:
        b.decode("utf-8")
        raise AssertionError("garbage was valid UTF-8")
    except UnicodeDecodeError:
        pass


@test
def raw_action():
    reset()
    script({"model": "r", "steps": [
        {"kind": "raw", "status": 200, "body": "data: nope\n\n",
         "headers": {"Content-Type": "text/plain"}},
        {"kind": "raw", "status": 418, "body": ""},
        {"kind": "raw", "body": {"a": 1}},
    ]})
    st, h, b = chat("r")
    eq((st, h["content-type"], b), (200, "text/plain", b"data: nope\n\n"), "raw 1")
    st, h, b = chat("r")
    eq((st, b, h["content-length"]), (418, b"", "0"), "raw 2")
    st, h, b = chat("r")
    eq((st, json.loads(b)), (200, {"a": 1}), "raw 3")


@test
def stall_action():
    reset()
    script({"model": "s", "steps": [{"kind": "stall", "ms": 300}, {"kind": "stall"}]})
    t0 = time.monotonic()
    raw, kind = raw_exchange(raw_post(chat_body("s")))
    dt = time.monotonic() - t0
    eq(raw, b"", "no answer")
    assert 0.28 <= dt < 3, dt
    # default: until the client goes away
    s = socket.create_connection(("127.0.0.1", port()), timeout=0.3)
    s.sendall(raw_post(chat_body("s")))
    t0 = time.monotonic()
    try:
        d = s.recv(100)
        raise AssertionError("stall answered %r" % d)
    except socket.timeout:
        pass
    s.close()
    time.sleep(0.2)
    eq(control("GET", "/_emu/health")[0], 200, "alive")


@test
def delay_ms():
    reset()
    script({"model": "d", "steps": [{"kind": "ok", "delay_ms": 300},
                                    {"kind": "error", "preset": "server_error",
                                     "delay_ms": 200}]})
    t0 = time.monotonic()
    eq(chat("d")[0], 200, "ok")
    assert time.monotonic() - t0 >= 0.29
    t0 = time.monotonic()
    eq(chat("d")[0], 500, "err")
    assert time.monotonic() - t0 >= 0.19


@test
def threaded():
    reset()
    script({"model": "slow", "default": {"kind": "ok", "delay_ms": 500}})
    results = []

    def one():
        results.append(chat("slow")[0])

    t0 = time.monotonic()
    ths = [threading.Thread(target=one) for _ in range(10)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    dt = time.monotonic() - t0
    eq(results, [200] * 10, "results")
    assert dt < 2.0, "10 concurrent 500 ms requests took %.2fs" % dt


def _stream_events(model, step, usage=True, **kw):
    reset()
    script({"model": model, "steps": [step]})
    st, h, chunks, complete, _ = stream_request(chat_body(model, stream=True, usage=usage, **kw))
    eq(st, 200, "status")
    eq(h["content-type"], "text/event-stream", "ctype")
    eq(h.get("transfer-encoding"), "chunked", "chunked")
    assert "content-length" not in h
    return chunks, complete


@test
def stream_event_mode():
    chunks, complete = _stream_events("st", {"kind": "ok", "text": "The quick brown fox"})
    assert complete
    evs = sse(b"".join(chunks))
    eq(len(chunks), len(evs), "one write (chunk) per event")
    eq(evs[-1], "[DONE]", "done")
    first = evs[0]
    eq(first["object"], "chat.completion.chunk", "object")
    eq(first["choices"][0]["delta"], {"role": "assistant", "content": ""}, "first delta")
    eq(first["usage"], None, "usage null")
    ids = {e["id"] for e in evs[:-1]}
    eq(len(ids), 1, "one id")
    text, _ = stream_text(evs)
    eq(text, "The quick brown fox", "text")
    assert len(evs) > 5, "text must be split into pieces"
    fin = evs[-3]
    eq(fin["choices"][0]["finish_reason"], "stop", "finish")
    eq(fin["choices"][0]["delta"], {}, "finish delta")
    u = evs[-2]
    eq(u["choices"], [], "usage chunk choices")
    eq(u["usage"]["completion_tokens"], 4, "usage completion")
    eq(u["usage"]["prompt_tokens"], 4, "usage prompt")
    for e in evs[:-3]:
        eq(e["choices"][0]["finish_reason"], None, "no early finish")


@test
def stream_without_usage():
    chunks, complete = _stream_events("st", {"kind": "ok"}, usage=False)
    evs = sse(b"".join(chunks))
    eq(evs[-1], "[DONE]", "done")
    eq(evs[-2]["choices"][0]["finish_reason"], "stop", "finish")
    for e in evs[:-1]:
        assert "usage" not in e, e
    eq(stream_text(evs)[0], "Hello from st!", "default text")


@test
def stream_byte_mode():
    ref, _ = _stream_events("st", {"kind": "ok", "text": "h\u00e9llo w\u00f6rld",
                                   "id": "fixed"})
    chunks, complete = _stream_events("st", {"kind": "ok", "text": "h\u00e9llo w\u00f6rld",
                                             "id": "fixed", "chunking": "byte"})
    assert complete
    assert all(len(c) == 1 for c in chunks), "byte mode sends 1-byte chunks"
    a, b = sse(b"".join(ref)), sse(b"".join(chunks))
    for x in a + b:     # created may differ by a second
        if isinstance(x, dict):
            x.pop("created")
    eq(b, a, "byte stream equals event stream")


@test
def stream_random_and_block_modes():
    step = {"kind": "ok", "text": "random split points please", "chunking": "random",
            "seed": 42, "id": "fixed"}
    c1, complete = _stream_events("st", step)
    assert complete
    c2, _ = _stream_events("st", step)
    eq([len(c) for c in c1], [len(c) for c in c2], "same seed, same split")
    assert len(set(len(c) for c in c1)) > 3, "sizes vary"
    eq(stream_text(sse(b"".join(c1)))[0], "random split points please", "random text")
    step["seed"] = 7
    c3, _ = _stream_events("st", step)
    assert [len(c) for c in c3] != [len(c) for c in c1], "other seed, other split"
    cb, complete = _stream_events("st", {"kind": "ok", "chunking": "block"})
    assert complete
    eq(len(cb), 1, "block is one chunk")
    eq(stream_text(sse(cb[0]))[0], "Hello from st!", "block text")


@test
def stream_reasoning_and_prefix():
    chunks, _ = _stream_events("st", {"kind": "ok", "reasoning": "let me think", "text": "ok",
                                      "body_prefix": ": OPENROUTER PROCESSING\n\n"})
    data = b"".join(chunks)
    assert data.startswith(b": OPENROUTER PROCESSING\n\n")
    text, reasoning = stream_text(sse(data))
    eq((text, reasoning), ("ok", "let me think"), "reasoning stream")


@test
def stream_tool_calls():
    tcs = [{"id": "call_a", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris \\\"FR\\\"\"}"}},
           {"type": "function", "function": {"name": "noargs", "arguments": ""}}]
    chunks, _ = _stream_events("tc", {"kind": "ok", "tool_calls": tcs, "chunking": "random"})
    evs = sse(b"".join(chunks))
    eq(evs[0]["choices"][0]["delta"], {"role": "assistant", "content": None}, "first")
    calls = {}
    firsts = []
    for e in evs:
        if e == "[DONE]" or not e["choices"]:
            continue
        for t in e["choices"][0]["delta"].get("tool_calls", []):
            if "type" in t:
                firsts.append(t)
                calls[t["index"]] = {"id": t.get("id"), "name": t["function"]["name"],
                                     "args": t["function"]["arguments"]}
            else:
                eq(set(t), {"index", "function"}, "fragment keys")
                calls[t["index"]]["args"] += t["function"]["arguments"]
    eq(firsts[0], {"index": 0, "id": "call_a", "type": "function",
                   "function": {"name": "get_weather", "arguments": ""}}, "first fragment")
    assert "id" not in firsts[1], "missing id stays missing"
    eq(calls[0]["args"], tcs[0]["function"]["arguments"], "args reassembled")
    eq(calls[1]["args"], "", "no args")
    eq(evs[-3]["choices"][0]["finish_reason"], "tool_calls", "finish")


@test
def stream_event_delay():
    t0 = time.monotonic()
    chunks, complete = _stream_events("st", {"kind": "ok", "text": "abcdefgh",
                                             "event_delay_ms": 60})
    dt = time.monotonic() - t0
    n = len(sse(b"".join(chunks)))
    assert dt >= (n - 1) * 0.06 * 0.9, (dt, n)


@test
def stream_drop_after_events():
    for reset_conn in (False, True):
        reset()
        script({"model": "dr", "steps": [{"kind": "ok", "text": "abcdefghijkl",
                                          "drop_after_events": 3, "reset": reset_conn}]})
        st, h, chunks, complete, kind = stream_request(chat_body("dr", stream=True))
        eq(st, 200, "status")
        assert not complete, "no terminating chunk after a drop"
        evs = sse(b"".join(chunks))
        eq(len(evs), 3, "events before drop")
        eq(kind, "reset" if reset_conn else "eof", "close kind")
    # with http.client the stream read fails
    reset()
    script({"model": "dr", "steps": [{"kind": "ok", "drop_after_events": 2,
                                      "chunking": "byte"}]})
    try:
        chat("dr", stream=True)
        raise AssertionError("expected IncompleteRead")
    except http.client.IncompleteRead:
        pass


@test
def stream_error_after_events():
    chunks, complete = _stream_events("se", {"kind": "ok", "text": "abcdefgh",
                                             "error_after_events": 2})
    assert complete, "error stream ends cleanly"
    evs = sse(b"".join(chunks))
    eq(len(evs), 3, "2 events + error")
    eq(evs[-1]["error"]["type"], "server_error", "default error body")
    body = {"error": {"code": 502, "message": "Provider disconnected"},
            "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]}
    chunks, _ = _stream_events("se", {"kind": "ok", "error_after_events": 1,
                                      "error_body": body})
    evs = sse(b"".join(chunks))
    eq(evs[-1], body, "verbatim error body")
    chunks, _ = _stream_events("se", {"kind": "ok", "error_after_events": 1,
                                      "error_body": {"message": "wrapped", "type": "x"}})
    eq(sse(b"".join(chunks))[-1], {"error": {"message": "wrapped", "type": "x"}}, "wrapped")
    chunks, _ = _stream_events("se", {"kind": "ok", "error_after_events": 0,
                                      "error_preset": "rate_limit"})
    evs = sse(b"".join(chunks))
    eq((len(evs), evs[0]["error"]["code"]), (1, "rate_limit_exceeded"), "error preset")


@test
def requests_log_and_stats():
    reset()
    post(body=chat_body("a"), headers={"X-Title": "T"})
    post(path="/api/v1/chat/completions?x=1&y=2&y=3", body=chat_body("b"))
    post(body=b"not json {")
    post(path="/v1/other", body=chat_body("a"))
    st, log = control("GET", "/_emu/requests")
    eq(st, 200, "status")
    eq(len(log), 4, "entries")
    e = log[0]
    eq((e["method"], e["path"], e["query"], e["model"]),
       ("POST", "/v1/chat/completions", {}, "a"), "entry 0")
    eq(e["headers"]["x-title"], "T", "lowercase headers")
    eq(e["headers"]["authorization"], "Bearer " + KEY, "auth header")
    eq(e["body"], chat_body("a"), "parsed body")
    eq((log[1]["path"], log[1]["query"], log[1]["model"]),
       ("/api/v1/chat/completions", {"x": "1", "y": ["2", "3"]}, "b"), "entry 1")
    eq((log[2]["body"], log[2]["model"]), ("not json {", None), "raw body")
    eq(log[3]["path"], "/v1/other", "unknown path logged")
    st, stats = control("GET", "/_emu/stats")
    eq(stats["requests"], 4, "requests")
    eq(stats["by_model"], {"a": 1, "b": 1}, "by_model (unknown paths have no model)")
    reset()
    eq(control("GET", "/_emu/requests")[1], [], "log cleared")
    st, stats = control("GET", "/_emu/stats")
    eq((stats["requests"], stats["by_model"], stats["connections"]), (0, {}, 0), "cleared")
    eq(json.loads(chat("a")[2])["id"], "chatcmpl-emu-1", "counter reset")


@test
def keep_alive():
    reset()
    conn = http.client.HTTPConnection("127.0.0.1", port(), timeout=10)
    for m in ("k1", "k2"):
        st, h, b = post(body=chat_body(m), conn=conn)
        eq(st, 200, m)
    # an error reply keeps the connection too
    st, _, _ = post(body=b"{bad", conn=conn)
    eq(st, 400, "bad json on same conn")
    st, _, _ = post(body=chat_body("k3", stream=True), conn=conn)
    eq(st, 200, "stream on same conn")
    conn.close()
    st, stats = control("GET", "/_emu/stats")
    eq(stats["connections"], 1, "one provider connection")
    eq(stats["requests"], 4, "requests")
    log = control("GET", "/_emu/requests")[1]
    eq(len({e["conn"] for e in log}), 1, "same conn id")


@test
def require_key_false():
    reset()
    script({"model": "llama3", "require_key": False, "steps": []})
    st, _, b = post(body=chat_body("llama3"), key=None)
    eq(st, 200, "no key needed")
    st, _, b = post(body=chat_body("llama3"), key="bad-key")
    eq(st, 200, "bad key ignored")
    eq(post(body=chat_body("other"), key=None)[0], 401, "others still need a key")


@test
def wildcard_script():
    reset()
    script({"model": "*", "steps": [{"kind": "error", "preset": "overloaded"}]},
           {"model": "own", "steps": []})
    eq(chat("anything")[0], 503, "wildcard step")
    eq(chat("else")[0], 200, "wildcard exhausted")
    eq(chat("own")[0], 200, "own script wins")


@test
def chunked_request_body():
    reset()
    body = json.dumps(chat_body("ch")).encode()
    half = len(body) // 2
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nAuthorization: Bearer k\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           + b"%x\r\n" % half + body[:half] + b"\r\n"
           + b"%x;ext=1\r\n" % (len(body) - half) + body[half:] + b"\r\n0\r\n\r\n")
    raw, _ = raw_exchange(req)
    st, h, b = split_response(raw)
    eq(st, 200, "chunked upload")
    eq(json.loads(b)["model"], "ch", "model")


@test
def malformed_http_is_survived():
    bad = [
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"short",
        b"POST /v1/chat/completions HTTP/1.1\r\n",
        b"",
    ]
    for data in bad:
        s = socket.create_connection(("127.0.0.1", port()), timeout=5)
        if data:
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
        s.close()
    # HTTP/1.0 stream: no chunking, close delimits
    raw, _ = raw_exchange(raw_post(chat_body("h10", stream=True)).replace(b"HTTP/1.1",
                                                                          b"HTTP/1.0", 1))
    st, h, body = split_response(raw)
    eq((st, h.get("transfer-encoding")), (200, None), "http/1.0 stream")
    eq(stream_text(sse(body))[0], "Hello from h10!", "http/1.0 text")
    eq(control("GET", "/_emu/health")[0], 200, "still alive")
    eq(chat()[0], 200, "still serving")


@test
def port_file_and_script_file():
    d = tempfile.mkdtemp()
    try:
        pf = os.path.join(d, "port")
        sf = os.path.join(d, "script.json")
        with open(sf, "w") as f:
            json.dump([{"model": "fromfile", "steps": [{"kind": "error", "preset": "quota"}]}], f)
        e = Emu("--port-file", pf, "--script", sf)
        try:
            with open(pf) as f:
                eq(f.read(), "%d\n" % e.port, "port file")
            st, _, b = post(body=chat_body("fromfile"), p=e.port)
            eq(st, 429, "scripted from file")
            eq(json.loads(b)["error"]["code"], "insufficient_quota", "quota")
        finally:
            rc, out, err = e.stop()
        eq((rc, out, err), (0, b"", b""), "quiet clean exit")
        assert sorted(os.listdir(d)) == ["port", "script.json"], os.listdir(d)
        with open(sf, "w") as f:
            f.write("[{\"model\": \"x\", \"steps\": [{\"kind\": \"nope\"}]}]")
        p = subprocess.run([sys.executable, EMU, "--script", sf], capture_output=True,
                           timeout=10)
        assert p.returncode != 0 and b"nope" in p.stderr and p.stdout == b"", p
    finally:
        shutil.rmtree(d)


@test
def logging_goes_to_stderr():
    e = Emu(quiet=False)
    try:
        eq(post(p=e.port)[0], 200, "request")
    finally:
        rc, out, err = e.stop()
    eq((rc, out), (0, b""), "stdout holds only the PORT line")
    assert b"POST /v1/chat/completions" in err, err


@test
def signals_exit_cleanly():
    for sig in (signal.SIGTERM, signal.SIGINT):
        e = Emu()
        script({"model": "s", "default": {"kind": "stall"}}, p=e.port)
        s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        s.sendall(raw_post(chat_body("s")))
        s2 = socket.create_connection(("127.0.0.1", e.port), timeout=5)   # idle keep-alive
        time.sleep(0.2)
        t0 = time.monotonic()
        rc, out, err = e.stop(sig, timeout=5)
        dt = time.monotonic() - t0
        s.close()
        s2.close()
        eq((rc, out, err), (0, b"", b""), "exit on signal %d" % sig)
        assert dt < 2, "took %.2fs to exit" % dt


@test
def tls():
    d = tempfile.mkdtemp()
    try:
        subprocess.run(["bash", CERTS, d], check=True, timeout=60)
        ca, other = os.path.join(d, "ca.pem"), os.path.join(d, "other-ca.pem")
        e = Emu("--tls-cert", os.path.join(d, "server.pem"),
                "--tls-key", os.path.join(d, "server.key"))
        try:
            # plain HTTP to the TLS port: dropped, server survives
            raw, _ = raw_exchange(b"GET /_emu/health HTTP/1.1\r\nHost: x\r\n\r\n", p=e.port)
            assert not raw.startswith(b"HTTP/1.1 200"), raw
            # unrelated CA: verification fails
            bad = ssl.create_default_context(cafile=other)
            c = http.client.HTTPSConnection("localhost", e.port, context=bad, timeout=10)
            try:
                c.request("GET", "/_emu/health")
                raise AssertionError("verification with other-ca.pem succeeded")
            except ssl.SSLCertVerificationError:
                pass
            c.close()
            # our CA: works by name and by IP, keep-alive on one connection
            good = ssl.create_default_context(cafile=ca)
            for host in ("localhost", "127.0.0.1"):
                c = http.client.HTTPSConnection(host, e.port, context=good, timeout=10)
                for i in range(2):
                    st, h, b = post(body=chat_body("tls"), conn=c)
                    eq(st, 200, "https %s #%d" % (host, i))
                eq(c.sock.version() in ("TLSv1.2", "TLSv1.3"), True, "tls version")
                st, h, b = post(body=chat_body("tls", stream=True, usage=True), conn=c)
                eq(stream_text(sse(b))[0], "Hello from tls!", "https stream")
                c.close()
            c = http.client.HTTPSConnection("localhost", e.port, context=good, timeout=10)
            c.request("GET", "/_emu/stats")
            stats = json.loads(c.getresponse().read())
            c.close()
            eq(stats["connections"], 2, "two TLS provider connections")
            eq(stats["requests"], 6, "requests")
            assert stats["connections_accepted"] >= 5, stats
            # faults over TLS
            reset_ctx = {"model": "f", "steps": [{"kind": "truncate"},
                                                 {"kind": "ok", "drop_after_events": 2}]}
            c = http.client.HTTPSConnection("localhost", e.port, context=good, timeout=10)
            c.request("POST", "/_emu/script", body=json.dumps(reset_ctx),
                      headers={"Content-Type": "application/json"})
            eq(c.getresponse().status, 200, "script over TLS")
            c.close()
            for stream in (False, True):
                c = http.client.HTTPSConnection("localhost", e.port, context=good, timeout=10)
                try:
                    post(body=chat_body("f", stream=stream), conn=c)
                    raise AssertionError("expected an incomplete read")
                except (http.client.IncompleteRead, ssl.SSLError, ConnectionError):
                    pass
                c.close()
        finally:
            rc, out, err = e.stop()
        eq((rc, err), (0, b""), "TLS emulator exit")
        # idempotent
        before = open(ca, "rb").read()
        subprocess.run(["bash", CERTS, d], check=True, timeout=60)
        eq(open(ca, "rb").read(), before, "make-certs.sh is idempotent")
    finally:
        shutil.rmtree(d)


# --------------------------------------------------------------------------
# Anthropic dialect
# --------------------------------------------------------------------------

AN_PATH = "/v1/messages"
AN_VERSION = "2023-06-01"


def an_body(model="claude-x", content="hello there", **kw):
    b = {"model": model, "max_tokens": 2048, "messages": [{"role": "user", "content": content}]}
    b.update(kw)
    return b


def an_post(body=None, key=KEY, version=AN_VERSION, bearer=False, headers=None, conn=None,
            path=AN_PATH):
    h = {}
    if key is not None:
        if bearer:
            h["Authorization"] = "Bearer " + key
        else:
            h["x-api-key"] = key
    if version is not None:
        h["anthropic-version"] = version
    h.update(headers or {})
    return post(path, body if body is not None else an_body(), key=None, headers=h, conn=conn)


def an_err(body=None, status=400, **kw):
    st, h, b = an_post(body, **kw)
    j = json.loads(b)
    eq(st, status, "status for %r" % (body,))
    eq(set(j), {"type", "error", "request_id"}, "error keys")
    eq(j["type"], "error", "type")
    assert j["request_id"].startswith("req_"), j
    eq(h.get("request-id"), j["request_id"], "request-id header")
    return j["error"]


def an_stream_raw(body, **kw):
    return stream_request(body, path=AN_PATH,
                          extra=b"anthropic-version: " + AN_VERSION.encode() + b"\r\n", **kw)


def an_sse(data):
    """Parse an Anthropic stream: every event is exactly an event: line and a data: line."""
    text = data.decode("utf-8")
    assert text.endswith("\n\n"), "stream does not end with a blank line"
    out = []
    for ev in text.split("\n\n"):
        if not ev:
            continue
        lines = ev.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and \
            lines[1].startswith("data: "), "bad event %r" % ev
        obj = json.loads(lines[1][6:])
        eq(obj["type"], lines[0][7:], "event name = data type")
        out.append(obj)
    return out


def an_assemble(evs):
    """Rebuild (content blocks, stop_reason, usage) from stream events."""
    blocks, stop, usage = {}, None, None
    for e in evs:
        t = e["type"]
        if t == "message_start":
            usage = dict(e["message"]["usage"])
        elif t == "content_block_start":
            b = dict(e["content_block"])
            if b["type"] == "tool_use":
                eq(b["input"], {}, "tool_use starts with empty input")
                b["_json"] = ""
            blocks[e["index"]] = b
        elif t == "content_block_delta":
            b, d = blocks[e["index"]], e["delta"]
            if d["type"] == "text_delta":
                b["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                b["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                b["signature"] = d["signature"]
            elif d["type"] == "input_json_delta":
                b["_json"] += d["partial_json"]
            else:
                raise AssertionError("unknown delta %r" % d)
        elif t == "content_block_stop":
            b = blocks[e["index"]]
            if b["type"] == "tool_use":
                b["input"] = json.loads(b.pop("_json") or "{}")
        elif t == "message_delta":
            stop = e["delta"]["stop_reason"]
            usage.update(e["usage"])
    return [blocks[i] for i in sorted(blocks)], stop, usage


@test
def anthropic_success_shape():
    reset()
    st, h, b = an_post(an_body("claude-x", content="one two three"))
    eq(st, 200, "status")
    eq(h["content-type"], "application/json", "ctype")
    assert h.get("request-id", "").startswith("req_"), h
    j = json.loads(b)
    eq(list(j), ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence",
                 "usage"], "key order")
    eq((j["id"], j["type"], j["role"], j["model"]),
       ("msg_emu_1", "message", "assistant", "claude-x"), "envelope")
    eq(j["content"], [{"type": "text", "text": "Hello from claude-x!"}], "content")
    eq((j["stop_reason"], j["stop_sequence"]), ("end_turn", None), "stop")
    eq(j["usage"], {"input_tokens": 3, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                       "ephemeral_1h_input_tokens": 0},
                    "output_tokens": 3, "service_tier": "standard"}, "usage")
    # system and blocks count towards input_tokens
    st, _, b = an_post(an_body(system=[{"type": "text", "text": "be terse"}],
                               messages=[{"role": "user", "content": [
                                   {"type": "text", "text": "a b"},
                                   {"type": "image", "source": {"type": "url",
                                                                "url": "https://x/y.png"}}]}]))
    eq((st, json.loads(b)["usage"]["input_tokens"]), (200, 4), "input words")
    # the SDK's recorded request (Authorization: Bearer, newer anthropic-version) is accepted
    with open("/work/shared/sdk-requests/anthropic.json") as f:
        sdk = json.load(f)
    for kind in ("non_stream", "stream"):
        r = sdk[kind]
        st, h, b = post(r["path"], r["body"], key=None,
                        headers={"Authorization": r["headers"]["authorization"],
                                 "anthropic-version": r["headers"]["anthropic-version"]})
        eq(st, 200, "sdk %s request" % kind)


@test
def anthropic_auth_and_version():
    reset()
    e = an_err(key=None, status=401)
    eq(e, {"type": "authentication_error", "message": "x-api-key header is required"}, "no key")
    e = an_err(key="bad-key", status=401)
    eq(e, {"type": "authentication_error", "message": "invalid x-api-key"}, "bad key")
    e = an_err(key="bad-key", bearer=True, status=401)
    eq(e["message"], "invalid x-api-key", "bad bearer key")
    eq(an_post(bearer=True)[0], 200, "bearer accepted")
    eq(an_post(headers={"Authorization": "Basic x"}, key=None)[0], 401, "basic auth")
    e = an_err(version=None)
    eq(e, {"type": "invalid_request_error", "message": "anthropic-version: header is required"},
       "no version")
    eq(an_post(version="2026-10-21")[0], 200, "any version value")
    script({"model": "nokey", "require_key": False})
    eq(an_post(an_body("nokey"), key=None)[0], 200, "require_key false")
    eq(an_err(an_body("nokey"), key=None, version=None)["message"],
       "anthropic-version: header is required", "version still required")
    log = control("GET", "/_emu/requests")[1]
    eq({e["action"] for e in log}, {"rejected", "ok"}, "actions")
    eq({e["dialect"] for e in log}, {"anthropic"}, "dialect")


@test
def anthropic_validation():
    reset()
    u = {"role": "user", "content": "hi"}
    cases = [
        (b"{nope", "The request body is not valid JSON: Expecting property name enclosed in "
                   "double quotes: line 1 column 2 (char 1)"),
        (b"[1]", "Input should be a valid dictionary or object to extract fields from"),
        (an_body(foo=1), "foo: Extra inputs are not permitted"),
        ({"max_tokens": 5, "messages": [u]}, "model: Field required"),
        ({"model": 5, "max_tokens": 5, "messages": [u]}, "model: Input should be a valid string"),
        ({"model": "m", "messages": [u]}, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": "5", "messages": [u]},
         "max_tokens: Input should be a valid integer"),
        ({"model": "m", "max_tokens": 1.5, "messages": [u]},
         "max_tokens: Input should be a valid integer"),
        ({"model": "m", "max_tokens": -1, "messages": [u]},
         "max_tokens: Input should be greater than or equal to 0"),
        ({"model": "m", "max_tokens": 5}, "messages: Field required"),
        ({"model": "m", "max_tokens": 5, "messages": []},
         "messages: at least one message is required"),
        ({"model": "m", "max_tokens": 5, "messages": "hi"},
         "messages: Input should be a valid list"),
        (an_body(messages=[{"role": "system", "content": "x"}, u]),
         'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
         'parameter, not "system" as an input message role.'),
        (an_body(messages=[{"role": "tool", "content": "x"}]),
         "messages.0.role: Input should be 'user' or 'assistant'"),
        (an_body(messages=[{"content": "x"}]), "messages.0.role: Field required"),
        (an_body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
        (an_body(messages=[{"role": "user", "content": "x", "name": "n"}]),
         "messages.0.name: Extra inputs are not permitted"),
        (an_body(messages=[{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]),
         "messages.0: all messages must have non-empty content except for the optional final "
         "assistant message"),
        (an_body(messages=[{"role": "user", "content": []}]),
         "messages.0: all messages must have non-empty content except for the optional final "
         "assistant message"),
        (an_body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
         "messages: text content blocks must be non-empty"),
        (an_body(messages=[{"role": "user", "content": [{"type": "video"}]}]),
         "messages.0.content.0: Input tag 'video' found using 'type' does not match any of the "
         "expected tags: 'text', 'image', 'document', 'search_result', 'thinking', "
         "'redacted_thinking', 'tool_use', 'tool_result'"),
        (an_body(messages=[{"role": "user", "content": [{"text": "x"}]}]),
         "messages.0.content.0: Unable to extract tag using discriminator 'type'"),
        (an_body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
         "messages.0.content.0.text.text: Field required"),
        (an_body(messages=[u, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": {}, "index": 0}]}]),
         "messages.1.content.0.tool_use.index: Extra inputs are not permitted"),
        (an_body(messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                         "data": "AA=="}}]}]),
         "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', "
         "'image/png', 'image/gif' or 'image/webp'"),
        (an_body(messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]),
         "messages.0.content.0.image.source: Input tag 'file' found using 'type' does not match "
         "any of the expected tags: 'base64', 'url'"),
        (an_body(messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "url"}}]}]),
         "messages.0.content.0.image.source.url.url: Field required"),
        (an_body(messages=[u, {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}]),
         "messages.1.content.0.tool_use.input: Input should be a valid dictionary"),
        (an_body(messages=[u, {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "x"}]}]),
         "messages.1.content.0.thinking.signature: Field required"),
        (an_body(system=5), "system: Input should be a valid string or a valid list"),
        (an_body(tools=[{"name": "f"}]), "tools.0.custom.input_schema: Field required"),
        (an_body(tools=[{"input_schema": {"type": "object"}}]),
         "tools.0.custom.name: Field required"),
        (an_body(tools=[{"name": "bad name", "input_schema": {}}]),
         "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"),
        (an_body(tools=[{"name": "f", "input_schema": {}, "parameters": {}}]),
         "tools.0.custom.parameters: Extra inputs are not permitted"),
        (an_body(thinking={"type": "enabled", "budget_tokens": 1000}),
         "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"),
        (an_body(thinking={"type": "enabled"}), "thinking.enabled.budget_tokens: Field required"),
        (an_body(max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 2048}),
         "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
         "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
         "#max-tokens-and-context-window-size"),
        (an_body(thinking={"type": "on"}),
         "thinking: Input tag 'on' found using 'type' does not match any of the expected tags: "
         "'adaptive', 'disabled', 'enabled'"),
        (an_body(temperature=1.5), "temperature: range: 0..1"),
        (an_body(temperature="hot"), "temperature: Input should be a valid number"),
        (an_body(stream="yes"), "stream: Input should be a valid boolean"),
    ]
    for body, msg in cases:
        e = an_err(body)
        eq(e, {"type": "invalid_request_error", "message": msg}, "body %r" % (body,))
    ok = [
        an_body(max_tokens=0),
        an_body(thinking={"type": "enabled", "budget_tokens": 1024}),
        an_body(thinking={"type": "adaptive"}),
        an_body(temperature=0, top_p=0.9, top_k=5, stop_sequences=["x"], metadata={"user_id": "u"},
                system="be terse", tool_choice={"type": "auto"}, stream=False,
                tools=[{"name": "get_weather", "description": "d", "input_schema": {
                    "type": "object", "properties": {"c": {"type": "string"}}}},
                       {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}]),
        an_body(messages=[u, {"role": "assistant", "content": ""}]),        # final prefill
        an_body(messages=[u, u]),                                           # consecutive turns
        an_body(messages=[{"role": "assistant", "content": "first"}, u]),
        an_body(messages=[{"role": "user", "content": [
            {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AA=="}}]}]),
    ]
    for body in ok:
        st, _, b = an_post(body)
        eq(st, 200, "accepted %r: %s" % (body, b[:200]))
    st, stats = control("GET", "/_emu/stats")
    eq(stats["requests"], len(cases) + len(ok), "all requests counted")


@test
def anthropic_tool_pairing():
    reset()
    u = {"role": "user", "content": "weather?"}
    use = {"role": "assistant", "content": [
        {"type": "text", "text": "checking"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "P"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}]}

    def result(*ids):
        return {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": i, "content": "ok"} for i in ids]}
    eq(an_post(an_body(messages=[u, use, result("toolu_1", "toolu_2")]))[0], 200, "paired")
    eq(an_post(an_body(messages=[u, use, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1",
         "content": [{"type": "text", "text": "ok"}], "is_error": True},
        {"type": "tool_result", "tool_use_id": "toolu_2"}]}]))[0], 200, "list content / none")
    e = an_err(an_body(messages=[u, use, result("toolu_1", "toolu_9")]))
    eq(e["message"], "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` "
                     "blocks: toolu_9. Each `tool_result` block must have a corresponding "
                     "`tool_use` block in the previous message.", "unknown id")
    e = an_err(an_body(messages=[result("toolu_1")]))
    eq(e["message"], "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` "
                     "blocks: toolu_1. Each `tool_result` block must have a corresponding "
                     "`tool_use` block in the previous message.", "no previous message")
    e = an_err(an_body(messages=[u, use, u, result("toolu_1")]))
    assert e["message"].startswith("messages.3.content.0: unexpected `tool_use_id`"), e
    e = an_err(an_body(messages=[u, use, u]))
    assert e["message"].startswith("messages.1: `tool_use` ids were found without "
                                   "`tool_result` blocks immediately after: toolu_1, toolu_2."), e
    e = an_err(an_body(messages=[u, use, result("toolu_1")]))
    eq(e["message"], "messages.1: `tool_use` ids were found without `tool_result` blocks "
                     "immediately after: toolu_2. Each `tool_use` block must have a "
                     "corresponding `tool_result` block in the next message.", "missing result")
    eq(an_post(an_body(messages=[u, use]))[0], 200, "tool_use as the final message")
    e = an_err(an_body(messages=[u, use, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "tool_use"}]}]}]))
    assert "tool_result.content.0: Input tag 'tool_use'" in e["message"], e


@test
def anthropic_presets():
    reset()
    expect = {
        "rate_limit": (429, "rate_limit_error"), "overloaded": (529, "overloaded_error"),
        "server_error": (500, "api_error"), "invalid_request": (400, "invalid_request_error"),
        "auth": (401, "authentication_error"), "permission": (403, "permission_error"),
        "not_found": (404, "not_found_error"), "context_length": (400, "invalid_request_error"),
    }
    script({"model": "claude-e", "steps": [{"kind": "error", "preset": p} for p in expect]})
    got = {}
    for p, (status, type_) in expect.items():
        got[p] = an_err(an_body("claude-e"), status=status)
        eq(got[p]["type"], type_, p)
    eq(got["overloaded"]["message"], "Overloaded", "529 message")
    eq(got["server_error"]["message"], "Internal server error", "500 message")
    eq(got["not_found"]["message"], "model: claude-e", "404 message")
    eq(got["context_length"]["message"], "prompt is too long: 208310 tokens > 200000 maximum",
       "context length")
    eq(got["auth"]["message"], "invalid x-api-key", "401")
    assert got["rate_limit"]["message"].startswith("Number of request tokens has exceeded"), got
    # 413 comes from Anthropic's Cloudflare edge: no top-level type, no request_id
    script({"model": "claude-e", "steps": [
        {"kind": "error", "preset": "too_large"},
        {"kind": "error", "status": 529},
        {"kind": "error", "status": 429, "headers": {"retry-after": "3"}},
        {"kind": "error", "preset": "quota"},          # another dialect's preset: its status
        {"kind": "error", "status": 418},
        {"kind": "error"}]})
    st, _, b = an_post(an_body("claude-e"))
    eq((st, json.loads(b)), (413, {"error": {"type": "request_too_large",
                                             "message": "Request exceeds the maximum size"}}),
       "413")
    eq(an_err(an_body("claude-e"), status=529)["type"], "overloaded_error", "from status")
    st, h, b = an_post(an_body("claude-e"))
    eq((st, h.get("retry-after"), json.loads(b)["error"]["type"]), (429, "3", "rate_limit_error"),
       "retry-after")
    eq(an_err(an_body("claude-e"), status=429)["type"], "rate_limit_error", "foreign preset")
    eq(an_err(an_body("claude-e"), status=418)["type"], "invalid_request_error", "other 4xx")
    eq(an_err(an_body("claude-e"), status=500)["type"], "api_error", "default")


@test
def anthropic_ok_actions():
    reset()
    usage = {"input_tokens": 7, "output_tokens": 9, "cache_creation_input_tokens": 2,
             "cache_read_input_tokens": 100, "output_tokens_details": {"thinking_tokens": 4}}
    script({"model": "claude-o", "steps": [
        {"text": "hi", "thinking": "let me think", "stop_reason": "max_tokens", "usage": usage,
         "id": "msg_fixed", "headers": {"X-Extra": "1"}},
        {"tool_calls": [{"id": "toolu_a", "name": "get_weather", "arguments": {"city": "Paris"}},
                        {"name": "get_time", "arguments": "{\"tz\":\"UTC\"}"}]},
        {"text": "call", "tool_calls": [{"type": "function", "function": {
            "name": "f", "arguments": "{}"}}], "signature": "c2ln"},
        {"text": "x", "stop_sequence": "END"},
        {"text": None},
    ]})
    st, h, b = an_post(an_body("claude-o"))
    j = json.loads(b)
    eq((st, h.get("x-extra"), j["id"]), (200, "1", "msg_fixed"), "headers/id")
    eq(j["content"], [{"type": "thinking", "thinking": "let me think",
                       "signature": "ZW11bGF0b3ItdGhpbmtpbmctc2lnbmF0dXJl"},
                      {"type": "text", "text": "hi"}], "thinking + text")
    eq((j["stop_reason"], j["usage"]), ("max_tokens", usage), "stop_reason / verbatim usage")
    j = json.loads(an_post(an_body("claude-o"))[2])
    eq(j["content"], [{"type": "tool_use", "id": "toolu_a", "name": "get_weather",
                       "input": {"city": "Paris"}},
                      {"type": "tool_use", "id": "toolu_emu_1_1", "name": "get_time",
                       "input": {"tz": "UTC"}}], "tool_use blocks")
    eq(j["stop_reason"], "tool_use", "tool stop")
    j = json.loads(an_post(an_body("claude-o"))[2])
    eq([c["type"] for c in j["content"]], ["text", "tool_use"], "OpenAI-shaped call accepted")
    eq(j["content"][1]["input"], {}, "empty args")
    j = json.loads(an_post(an_body("claude-o"))[2])
    eq((j["stop_reason"], j["stop_sequence"]), ("stop_sequence", "END"), "stop sequence")
    j = json.loads(an_post(an_body("claude-o"))[2])
    eq((j["content"], j["stop_reason"]), ([], "end_turn"), "no content")


AN_STREAM_STEP = {"kind": "ok", "thinking": "step one then two", "text": "The quick brown fox",
                  "tool_calls": [{"id": "toolu_s", "name": "get_weather",
                                  "arguments": {"city": "Paris \"FR\"", "days": 3}},
                                 {"id": "toolu_n", "name": "noargs", "arguments": {}}],
                  "id": "msg_s"}


def _an_stream(step, model="claude-s", **kw):
    reset()
    script({"model": model, "steps": [step]})
    st, h, chunks, complete, kind = an_stream_raw(an_body(model, stream=True), **kw)
    eq(st, 200, "status")
    eq(h["content-type"], "text/event-stream", "ctype")
    assert h.get("request-id", "").startswith("req_"), h
    return chunks, complete, kind


@test
def anthropic_stream_events():
    chunks, complete, _ = _an_stream(AN_STREAM_STEP)
    assert complete
    evs = an_sse(b"".join(chunks))
    eq(len(chunks), len(evs), "one chunk per event")
    types = [e["type"] for e in evs]
    eq(types[0], "message_start", "first")
    eq(types[-2:], ["message_delta", "message_stop"], "last")
    eq(types[1:3], ["content_block_start", "ping"], "ping after the first block start")
    m = evs[0]["message"]
    eq((m["id"], m["content"], m["stop_reason"], m["usage"]["output_tokens"]),
       ("msg_s", [], None, 1), "message_start")
    starts = [e for e in evs if e["type"] == "content_block_start"]
    eq([s["content_block"] for s in starts],
       [{"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_s", "name": "get_weather", "input": {}},
        {"type": "tool_use", "id": "toolu_n", "name": "noargs", "input": {}}], "block starts")
    json_deltas = {}
    for e in evs:
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta":
            json_deltas.setdefault(e["index"], []).append(e["delta"]["partial_json"])
    eq(json_deltas[2][0], "", "first input_json fragment is empty")
    assert len(json_deltas[2]) > 3, json_deltas
    eq(json_deltas[3], ["", "{}"], "no-arg tool")
    content, stop, usage = an_assemble(evs)
    reset()
    script({"model": "claude-s", "steps": [AN_STREAM_STEP]})
    ref = json.loads(an_post(an_body("claude-s"))[2])
    eq(content, ref["content"], "stream rebuilds the non-stream content")
    eq(stop, "tool_use", "stop_reason")
    eq(usage["output_tokens"], ref["usage"]["output_tokens"], "cumulative output_tokens")
    eq(usage["input_tokens"], ref["usage"]["input_tokens"], "input_tokens")
    # verbatim usage: message_start carries it with output_tokens 1, message_delta the rest
    u = {"input_tokens": 5, "output_tokens": 42, "cache_read_input_tokens": 7}
    chunks, _, _ = _an_stream({"text": "ok", "usage": u, "stop_reason": "pause_turn"})
    evs = an_sse(b"".join(chunks))
    eq(evs[0]["message"]["usage"], {"input_tokens": 5, "output_tokens": 1,
                                    "cache_read_input_tokens": 7}, "start usage")
    eq(evs[-2]["usage"], {"input_tokens": 5, "cache_read_input_tokens": 7, "output_tokens": 42},
       "delta usage")
    eq(evs[-2]["delta"], {"stop_reason": "pause_turn", "stop_sequence": None}, "delta")
    chunks, _, _ = _an_stream({"text": None})
    eq([e["type"] for e in an_sse(b"".join(chunks))],
       ["message_start", "ping", "message_delta", "message_stop"], "empty answer")


@test
def anthropic_stream_chunking_modes():
    ref = None
    for mode in ("event", "byte", "random", "block"):
        step = dict(AN_STREAM_STEP, chunking=mode, seed=3)
        chunks, complete, _ = _an_stream(step)
        assert complete, mode
        if mode == "byte":
            assert all(len(c) == 1 for c in chunks)
        if mode == "block":
            eq(len(chunks), 1, "block")
        got = an_assemble(an_sse(b"".join(chunks)))
        if ref is None:
            ref = got
        eq(got, ref, "mode %s" % mode)
    chunks, _, _ = _an_stream(dict(AN_STREAM_STEP, piece_chars=1000))
    evs = an_sse(b"".join(chunks))
    eq(sum(1 for e in evs if e["type"] == "content_block_delta"
           and e["delta"]["type"] == "text_delta"), 1, "piece_chars")
    chunks, _, _ = _an_stream({"kind": "big", "bytes": 20000})
    content, _, _ = an_assemble(an_sse(b"".join(chunks)))
    eq(content, [{"type": "text", "text": "x" * 20000}], "big stream")


@test
def anthropic_stream_error_and_drop():
    chunks, complete, _ = _an_stream({"text": "abcdefgh", "error_after_events": 4})
    assert complete, "error stream ends with the terminating chunk"
    data = b"".join(chunks)
    assert data.endswith(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                         b'"message":"Overloaded"}}\n\n'), data[-200:]
    evs = an_sse(data)
    eq(len(evs), 5, "4 events + error")
    chunks, _, _ = _an_stream({"text": "abc", "error_after_events": 1,
                               "error_preset": "rate_limit"})
    eq(an_sse(b"".join(chunks))[-1]["error"]["type"], "rate_limit_error", "preset")
    chunks, _, _ = _an_stream({"text": "abc", "error_after_events": 1,
                               "error_body": {"type": "api_error", "message": "boom"}})
    eq(an_sse(b"".join(chunks))[-1], {"type": "error", "error": {"type": "api_error",
                                                                 "message": "boom"}}, "wrapped")
    chunks, _, _ = _an_stream({"text": "abc", "error_after_events": 1,
                               "error_body": {"type": "error", "error": {"type": "x"},
                                              "request_id": "req_1"}})
    eq(an_sse(b"".join(chunks))[-1], {"type": "error", "error": {"type": "x"},
                                      "request_id": "req_1"}, "verbatim")
    for rst in (False, True):
        chunks, complete, kind = _an_stream({"text": "abcdefghijkl", "drop_after_events": 3,
                                             "reset": rst,
                                             "chunking": "event" if rst else "random"})
        assert not complete
        eq(len(an_sse(b"".join(chunks))), 3, "events before drop")
        eq(kind, "reset" if rst else "eof", "close kind")


# --------------------------------------------------------------------------
# Gemini dialect
# --------------------------------------------------------------------------

GM_KEY = "test-gemini-key-0000"


def gm_path(model="gemini-2.5-flash", stream=False, sse=True, query=""):
    p = "/v1beta/models/%s:%s" % (model, "streamGenerateContent" if stream else "generateContent")
    q = [x for x in (("alt=sse" if stream and sse else ""), query) if x]
    return p + ("?" + "&".join(q) if q else "")


def gm_body(text="hello there", **kw):
    b = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    b.update(kw)
    return b


def gm_post(body=None, model="gemini-2.5-flash", key=GM_KEY, query="", headers=None,
            stream=False, sse=True):
    h = {"x-goog-api-key": key} if key is not None else {}
    h.update(headers or {})
    return post(gm_path(model, stream, sse, query), body if body is not None else gm_body(),
                key=None, headers=h)


def gm_err(body=None, status=400, **kw):
    st, h, b = gm_post(body, **kw)
    eq(st, status, "status for %r" % (body,))
    eq(h["content-type"], "application/json; charset=UTF-8", "ctype")
    assert b.startswith(b"{\n  \"error\": {\n"), b[:40]        # Google pretty-prints
    j = json.loads(b)
    eq(list(j), ["error"], "keys")
    eq(j["error"]["code"], status, "code")
    return j["error"]


def gm_stream_raw(body, model="gemini-2.5-flash", sse=True, **kw):
    return stream_request(body, path=gm_path(model, True, sse), key=None,
                          extra=b"x-goog-api-key: " + GM_KEY.encode() + b"\r\n", **kw)


def gm_sse(data):
    text = data.decode("utf-8")
    assert text.endswith("\r\n\r\n"), "stream must end with CRLF CRLF"
    assert "[DONE]" not in text
    out = []
    for ev in text.split("\r\n\r\n"):
        if ev:
            assert ev.startswith("data: ") and "\n" not in ev and "\r" not in ev, ev
            out.append(json.loads(ev[6:]))
    return out


def gm_assemble(chunks):
    """Merge streamed parts (adjacent text parts of the same kind) -> (parts, finish, usage)."""
    parts = []
    for c in chunks:
        assert "error" not in c, c
        for p in c["candidates"][0]["content"].get("parts", []):
            p = dict(p)
            prev = parts[-1] if parts else None
            if prev is not None and "text" in p and "text" in prev and \
                    prev.get("thought") == p.get("thought") and "thoughtSignature" not in prev:
                prev["text"] += p.pop("text")
                prev.update(p)
            else:
                parts.append(p)
    last = chunks[-1]
    return parts, last["candidates"][0].get("finishReason"), last.get("usageMetadata")


@test
def gemini_success_shape():
    reset()
    st, h, b = gm_post(gm_body("one two three", systemInstruction={"parts": [{"text": "be"}]}))
    eq(st, 200, "status")
    eq(h["content-type"], "application/json; charset=UTF-8", "ctype")
    assert b.startswith(b"{\n  \"candidates\": ["), b[:40]
    j = json.loads(b)
    eq(list(j), ["candidates", "usageMetadata", "modelVersion", "responseId"], "keys")
    eq(j["candidates"], [{"content": {"parts": [{"text": "Hello from gemini-2.5-flash!"}],
                                      "role": "model"}, "finishReason": "STOP", "index": 0}],
       "candidates")
    eq(j["usageMetadata"], {"promptTokenCount": 4, "candidatesTokenCount": 3,
                            "totalTokenCount": 7,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}]},
       "usage")
    eq((j["modelVersion"], j["responseId"]), ("gemini-2.5-flash", "emu-resp-1"), "ids")
    with open("/work/shared/sdk-requests/gemini.json") as f:
        sdk = json.load(f)
    for kind in ("non_stream", "stream"):
        r = sdk[kind]
        q = "?" + urllib.parse.urlencode(r["query"]) if r["query"] else ""
        st, h, b = post(r["path"] + q, r["body"], key=None,
                        headers={"x-goog-api-key": r["headers"]["x-goog-api-key"]})
        eq(st, 200, "sdk %s request" % kind)
    # snake_case field names are accepted, as by Google's proto-JSON parser
    eq(gm_post({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                "system_instruction": {"parts": [{"text": "s"}]},
                "generation_config": {"max_output_tokens": 5, "thinking_config": {
                    "thinking_budget": 0}}})[0], 200, "snake_case")


@test
def gemini_auth():
    reset()
    e = gm_err(key=None, status=403)
    eq(e, {"code": 403, "message": "Method doesn't allow unregistered callers (callers without "
                                   "established identity). Please use API Key or other form of "
                                   "API consumer identity to call this API.",
           "status": "PERMISSION_DENIED"}, "no key")
    e = gm_err(key="bad-key")
    eq((e["message"], e["status"]), ("API key not valid. Please pass a valid API key.",
                                     "INVALID_ARGUMENT"), "bad key")
    eq(e["details"][0], {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                         "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                         "metadata": {"service": "generativelanguage.googleapis.com"}}, "details")
    eq(e["details"][1]["@type"], "type.googleapis.com/google.rpc.LocalizedMessage", "localized")
    eq(gm_post(key=None, query="key=k")[0], 200, "?key=")
    eq(gm_err(key=None, query="key=bad-key")["details"][0]["reason"], "API_KEY_INVALID", "?key bad")
    eq(gm_post(key=None, headers={"Authorization": "Bearer k"})[0], 403, "bearer is not a key")
    script({"model": "gemma", "require_key": False})
    eq(gm_post(model="gemma", key=None)[0], 200, "require_key false")


@test
def gemini_validation():
    reset()
    star = "* GenerateContentRequest."
    cases = [
        (b"{nope", "Invalid JSON payload received. Unexpected token.\n{nope\n ^"),
        (b"[1]", 'Invalid JSON payload received. Unknown name "": Root element must be a message.'),
        (b"", star + "contents: contents is not specified\n"),
        ({}, star + "contents: contents is not specified\n"),
        ({"contents": []}, star + "contents: contents is not specified\n"),
        (gm_body(foo=1), 'Invalid JSON payload received. Unknown name "foo": Cannot find field.'),
        (gm_body(generationConfig={"maxTokens": 5}),
         "Invalid JSON payload received. Unknown name \"maxTokens\" at 'generation_config': "
         "Cannot find field."),
        (gm_body(generationConfig={"thinkingConfig": {"budget": 5}}),
         "Invalid JSON payload received. Unknown name \"budget\" at "
         "'generation_config.thinking_config': Cannot find field."),
        (gm_body(generationConfig={"temperature": "hot"}),
         "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\""),
        (gm_body(generationConfig={"maxOutputTokens": 1.5}),
         "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), 1.5"),
        ({"contents": "hi"}, "Invalid value at 'contents' "
                             "(type.googleapis.com/google.ai.generativelanguage.v1beta.Content), "
                             "\"hi\""),
        ({"contents": [{"role": "user", "parts": [{"txt": "x"}]}]},
         "Invalid JSON payload received. Unknown name \"txt\" at 'contents[0].parts[0]': "
         "Cannot find field."),
        ({"contents": [{"role": "user", "text": "x"}]},
         "Invalid JSON payload received. Unknown name \"text\" at 'contents[0]': "
         "Cannot find field."),
        ({"contents": [{"role": "user", "parts": []}]},
         star + "contents[0].parts: contents.parts must not be empty.\n"),
        ({"contents": [{"role": "user"}]},
         star + "contents[0].parts: contents.parts must not be empty.\n"),
        ({"contents": [{"role": "user", "parts": [{"text": ""}]},
                       {"role": "model", "parts": [{"thought": True}]}]},
         star + "contents[0].parts[0].data: required oneof field 'data' must have one "
                "initialized field\n" + star + "contents[1].parts[0].data: required oneof field "
                "'data' must have one initialized field\n"),
        (gm_body(systemInstruction={"parts": [{"text": ""}]}),
         star + "system_instruction.parts[0].data: required oneof field 'data' must have one "
                "initialized field\n"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
         "Please use a valid role: user, model."),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
         "Please use a valid role: user, model."),
        (gm_body(tools=[{"functionDeclarations": [{"name": "get weather"}]}]),
         star + "tools[0].function_declarations[0].name: Invalid function name. Must start with "
                "a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), "
                "dots (.), colons (:), or dashes (-), with a maximum length of 64.\n"),
        (gm_body(tools=[{"functions": []}]),
         "Invalid JSON payload received. Unknown name \"functions\" at 'tools[0]': "
         "Cannot find field."),
        (gm_body(tools=[{"functionDeclarations": [{"name": "f", "strict": True}]}]),
         "Invalid JSON payload received. Unknown name \"strict\" at "
         "'tools[0].function_declarations[0]': Cannot find field."),
    ]
    for body, msg in cases:
        e = gm_err(body)
        eq((e["message"], e["status"]), (msg, "INVALID_ARGUMENT"), "body %r" % (body,))
        if msg.startswith("Invalid JSON payload received. Unknown name \"") and "at '" in msg:
            eq(e["details"], [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                               "fieldViolations": [{"field": msg.split("at '")[1].split("'")[0],
                                                    "description": msg}]}], "details")
    e = gm_err(gm_body(foo=1))
    eq(e["details"][0]["fieldViolations"], [{"description": e["message"]}], "root violation")
    ok = [
        {"contents": [{"parts": [{"text": "no role"}]}]},
        gm_body(generationConfig={"temperature": 0.2, "topP": 1, "topK": 40, "maxOutputTokens": 9,
                                  "stopSequences": ["x"], "seed": 3, "candidateCount": 1,
                                  "responseMimeType": "application/json",
                                  "responseJsonSchema": {"type": "object",
                                                         "additionalProperties": False},
                                  "thinkingConfig": {"includeThoughts": True,
                                                     "thinkingBudget": 128}}),
        gm_body(generationConfig={"temperature": "0.5", "responseSchema": {
            "type": "OBJECT", "properties": {"a": {"type": "string", "nullable": True}}}}),
        {"contents": [{"role": "user", "parts": [
            {"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": "AA=="}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/f"}}]},
            {"role": "model", "parts": [{"text": "t", "thought": True},
                                        {"functionCall": {"name": "f", "args": {}},
                                         "thoughtSignature": "c2ln"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f",
                                                             "response": {"r": 1}}}]}],
         "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
         "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]},
    ]
    for body in ok:
        st, _, b = gm_post(body)
        eq(st, 200, "accepted %r: %s" % (body, b[:300]))


@test
def gemini_schema_rejections():
    reset()

    def fd(params, key="parameters"):
        return gm_body(tools=[{"functionDeclarations": [{"name": "f", key: params}]}])
    at = "tools[0].function_declarations[0].parameters"
    for kw in ("additionalProperties", "$schema", "$ref", "$defs", "const", "oneOf",
               "exclusiveMinimum", "propertyNames", "examples"):
        e = gm_err(fd({"type": "object", kw: False}))
        eq(e["message"], "Invalid JSON payload received. Unknown name \"%s\" at '%s': Cannot "
                         "find field." % (kw, at), kw)
    e = gm_err(fd({"type": "object", "$schema": "x", "properties": {
        "a": {"type": "string"},
        "b": {"type": "array", "items": {"type": "object", "additionalProperties": False}},
        "c": {"anyOf": [{"type": "string"}, {"const": 1}]},
        "d": {"type": ["string", "null"]},
        "e": {"type": "strng"}}}))
    msgs = e["message"].split("\n")
    eq(msgs, [
        "Invalid JSON payload received. Unknown name \"$schema\" at '%s': Cannot find field."
        % at,
        "Invalid JSON payload received. Unknown name \"additionalProperties\" at "
        "'%s.properties[1].value.items': Cannot find field." % at,
        "Invalid JSON payload received. Unknown name \"const\" at "
        "'%s.properties[2].value.any_of[1]': Cannot find field." % at,
        "Invalid JSON payload received. Unknown name \"type\" at '%s.properties[3].value': "
        "Proto field is not repeating, cannot start list." % at,
        "Invalid value at '%s.properties[4].value.type' "
        "(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"strng\"" % at],
       "all violations, in order")
    eq([v["field"] for v in e["details"][0]["fieldViolations"]],
       [at, at + ".properties[1].value.items", at + ".properties[2].value.any_of[1]",
        at + ".properties[3].value", at + ".properties[4].value.type"], "fields")
    e = gm_err(gm_body(generationConfig={"responseSchema": {"type": "object",
                                                            "additionalProperties": False}}))
    assert "at 'generation_config.response_schema'" in e["message"], e
    ok = fd({"type": "object", "additionalProperties": False, "$schema": "x",
             "properties": {"a": {"type": ["string", "null"], "const": "x"}}},
            "parametersJsonSchema")
    eq(gm_post(ok)[0], 200, "parametersJsonSchema takes full JSON Schema")
    eq(gm_post(fd({"type": "OBJECT", "properties": {"a": {"type": "integer", "format": "int32",
                                                          "minimum": 0, "enum": ["1"]}},
                   "required": ["a"], "propertyOrdering": ["a"], "title": "t"}))[0], 200,
       "subset accepted, any case")


@test
def gemini_presets():
    reset()
    expect = {"rate_limit": (429, "RESOURCE_EXHAUSTED"), "server_error": (500, "INTERNAL"),
              "overloaded": (503, "UNAVAILABLE"), "timeout": (504, "DEADLINE_EXCEEDED"),
              "invalid_request": (400, "INVALID_ARGUMENT"), "auth": (400, "INVALID_ARGUMENT"),
              "permission": (403, "PERMISSION_DENIED"), "not_found": (404, "NOT_FOUND")}
    script({"model": "gemini-e", "steps": [{"kind": "error", "preset": p} for p in expect]})
    got = {}
    for p, (status, name) in expect.items():
        got[p] = gm_err(model="gemini-e", status=status)
        eq(got[p]["status"], name, p)
    d = {x["@type"].rsplit(".", 1)[1]: x for x in got["rate_limit"]["details"]}
    eq(d["RetryInfo"]["retryDelay"], "37s", "retry delay")
    eq(d["QuotaFailure"]["violations"][0]["quotaDimensions"]["model"], "gemini-e", "quota")
    assert "Help" in d, d
    eq(got["overloaded"]["message"], "The model is overloaded. Please try again later.", "503")
    eq(got["auth"]["details"][0]["reason"], "API_KEY_INVALID", "auth")
    eq(got["not_found"]["message"],
       "models/gemini-e is not found for API version v1beta, or is not supported for "
       "generateContent. Call ListModels to see the list of available models and their "
       "supported methods.", "404")
    script({"model": "gemini-e", "steps": [{"kind": "error", "status": 503},
                                           {"kind": "error", "status": 401},
                                           {"kind": "error", "preset": "quota"},
                                           {"kind": "error", "preset": "overloaded",
                                            "status": 500}]})
    eq(gm_err(model="gemini-e", status=503)["status"], "UNAVAILABLE", "from status")
    eq(gm_err(model="gemini-e", status=401)["status"], "UNAUTHENTICATED", "other status")
    eq(gm_err(model="gemini-e", status=429)["status"], "RESOURCE_EXHAUSTED", "foreign preset")
    e = gm_err(model="gemini-e", status=500)
    eq((e["code"], e["status"]), (500, "UNAVAILABLE"), "status override")


@test
def gemini_ok_actions():
    reset()
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 40,
             "thoughtsTokenCount": 25, "cachedContentTokenCount": 8}
    tcs = [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}},
           {"name": "get_time", "arguments": "{\"tz\":\"UTC\"}"}]
    script({"model": "gemini-o", "steps": [
        {"text": "hi", "thinking": "hmm", "finish_reason": "MAX_TOKENS", "usage": usage},
        {"tool_calls": tcs, "thought_signature": "c2ln"},
        {"tool_calls": tcs, "with_ids": True},
        {"block_reason": "PROHIBITED_CONTENT"},
        {"text": None},
        {"text": "a b", "thinking": "c d e"},
    ]})
    j = json.loads(gm_post(model="gemini-o")[2])
    c = j["candidates"][0]
    eq(c["content"]["parts"], [{"text": "hmm", "thought": True}, {"text": "hi"}], "thought part")
    eq((c["finishReason"], j["usageMetadata"]), ("MAX_TOKENS", usage), "finish / usage")
    j = json.loads(gm_post(model="gemini-o")[2])
    eq(j["candidates"][0]["content"]["parts"],
       [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "get_time", "args": {"tz": "UTC"}}}], "calls, no ids")
    eq(j["candidates"][0]["finishReason"], "STOP", "Gemini says STOP for tool turns")
    j = json.loads(gm_post(model="gemini-o")[2])
    eq([p["functionCall"].get("id") for p in j["candidates"][0]["content"]["parts"]],
       ["c1", "emu-call-get_time"], "with_ids")
    j = json.loads(gm_post(model="gemini-o")[2])
    eq(list(j), ["promptFeedback", "usageMetadata", "modelVersion", "responseId"], "blocked keys")
    eq(j["promptFeedback"], {"blockReason": "PROHIBITED_CONTENT"}, "block")
    eq(j["usageMetadata"]["totalTokenCount"], 2, "prompt-only usage")
    j = json.loads(gm_post(model="gemini-o")[2])
    eq(j["candidates"][0]["content"], {"role": "model"}, "no parts")
    j = json.loads(gm_post(model="gemini-o")[2])
    eq(j["usageMetadata"], {"promptTokenCount": 2, "candidatesTokenCount": 2,
                            "totalTokenCount": 7, "thoughtsTokenCount": 3,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2}]},
       "thoughts counted apart")


GM_STREAM_STEP = {"kind": "ok", "thinking": "step one then two", "text": "The quick brown fox",
                  "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
                  "thought_signature": "c2ln", "id": "r-s"}


def _gm_stream(step, model="gemini-s", sse=True, **kw):
    reset()
    script({"model": model, "steps": [step]})
    st, h, chunks, complete, kind = gm_stream_raw(gm_body(), model=model, sse=sse, **kw)
    eq(st, 200, "status")
    eq(h["content-type"], "text/event-stream" if sse else "application/json; charset=UTF-8",
       "ctype")
    return chunks, complete, kind


@test
def gemini_stream_shape():
    chunks, complete, _ = _gm_stream(GM_STREAM_STEP)
    assert complete
    evs = gm_sse(b"".join(chunks))
    eq(len(chunks), len(evs), "one chunk per event")
    assert len(evs) > 8, len(evs)
    for e in evs[:-1]:
        assert "finishReason" not in e["candidates"][0], e
        eq(e["candidates"][0]["content"]["role"], "model", "role")
        eq((e["modelVersion"], e["responseId"]), ("gemini-s", "r-s"), "ids")
    eq(evs[-1]["candidates"][0]["finishReason"], "STOP", "finish on the last chunk")
    totals = [e["usageMetadata"]["totalTokenCount"] for e in evs]
    eq(totals, sorted(totals), "usage is a running total")
    assert b'{"candidates": [{"content": {"parts": [{"text": ' in chunks[0], chunks[0]
    parts, finish, usage = gm_assemble(evs)
    reset()
    script({"model": "gemini-s", "steps": [GM_STREAM_STEP]})
    ref = json.loads(gm_post(model="gemini-s")[2])
    eq(parts, ref["candidates"][0]["content"]["parts"], "stream rebuilds the parts")
    eq(finish, "STOP", "finish")
    eq(usage, ref["usageMetadata"], "final usage")
    u = {"promptTokenCount": 3, "candidatesTokenCount": 9, "totalTokenCount": 12}
    chunks, _, _ = _gm_stream({"text": "abcdefgh", "usage": u, "finish_reason": "SAFETY"})
    evs = gm_sse(b"".join(chunks))
    eq([e["usageMetadata"] for e in evs],
       [{"promptTokenCount": 3, "totalTokenCount": 3}, u], "scripted usage")
    eq(evs[-1]["candidates"][0]["finishReason"], "SAFETY", "native finish")
    chunks, _, _ = _gm_stream({"block_reason": "SAFETY"})
    evs = gm_sse(b"".join(chunks))
    eq((len(evs), evs[0]["promptFeedback"]), (1, {"blockReason": "SAFETY"}), "blocked stream")
    chunks, _, _ = _gm_stream({"text": None})
    evs = gm_sse(b"".join(chunks))
    eq(evs[0]["candidates"][0]["content"]["parts"], [{"text": ""}], "empty answer")


@test
def gemini_stream_chunking_modes():
    ref = None
    for mode in ("event", "byte", "random", "block"):
        chunks, complete, _ = _gm_stream(dict(GM_STREAM_STEP, chunking=mode, seed=5))
        assert complete, mode
        if mode == "byte":
            assert all(len(c) == 1 for c in chunks)
        got = gm_assemble(gm_sse(b"".join(chunks)))
        if ref is None:
            ref = got
        eq(got, ref, "mode %s" % mode)
    # the JSON-array stream (no alt=sse) carries the same chunks
    chunks, complete, _ = _gm_stream(GM_STREAM_STEP, sse=False, )
    arr = json.loads(b"".join(chunks))
    assert b"".join(chunks).startswith(b"[{\n"), chunks[0][:10]
    eq(gm_assemble(arr), ref, "JSON array stream")
    chunks, _, _ = _gm_stream({"kind": "big", "bytes": 20000})
    eq(gm_assemble(gm_sse(b"".join(chunks)))[0], [{"text": "x" * 20000}], "big")


@test
def gemini_stream_error_and_drop():
    chunks, complete, _ = _gm_stream({"text": "abcdefghijkl", "error_after_events": 2})
    assert complete
    evs = gm_sse(b"".join(chunks))
    eq(len(evs), 3, "2 events + error")
    eq(evs[-1], {"error": {"code": 500, "message": "An internal error has occurred. Please "
                           "retry or report in https://developers.generativeai.google/guide/"
                           "troubleshooting", "status": "INTERNAL"}}, "default error")
    chunks, _, _ = _gm_stream({"text": "abc", "error_after_events": 1,
                               "error_preset": "overloaded"})
    eq(gm_sse(b"".join(chunks))[-1]["error"]["status"], "UNAVAILABLE", "preset")
    chunks, _, _ = _gm_stream({"text": "abc", "error_after_events": 0,
                               "error_body": {"code": 500, "message": "m", "status": "INTERNAL"}})
    eq(gm_sse(b"".join(chunks)), [{"error": {"code": 500, "message": "m", "status": "INTERNAL"}}],
       "wrapped")
    chunks, _, _ = _gm_stream({"text": "abcdefgh", "error_after_events": 1}, sse=False)
    arr = json.loads(b"".join(chunks))
    eq((len(arr), arr[-1]["error"]["status"]), (2, "INTERNAL"), "array stream error")
    for rst in (False, True):
        chunks, complete, kind = _gm_stream({"text": "abcdefghijkl", "drop_after_events": 2,
                                             "reset": rst,
                                             "chunking": "event" if rst else "byte"})
        assert not complete
        eq(len(gm_sse(b"".join(chunks))), 2, "events before drop")
        eq(kind, "reset" if rst else "eof", "close kind")


@test
def gemini_model_from_path():
    reset()
    script({"model": "tuned/my model:v1", "steps": [{"text": "escaped"}]})
    st, _, b = post("/v1beta/models/tuned%2Fmy%20model%3Av1:generateContent", gm_body(),
                    key=None, headers={"x-goog-api-key": GM_KEY})
    j = json.loads(b)
    eq((st, j["candidates"][0]["content"]["parts"][0]["text"], j["modelVersion"]),
       (200, "escaped", "tuned/my model:v1"), "decoded model id scripts")
    eq(post("/gemini/v1beta/models/m:generateContent", gm_body(), key=None,
            headers={"x-goog-api-key": GM_KEY})[0], 200, "prefix")
    st, _, b = post("/v1beta/models/m:countTokens", gm_body(), key=None,
                    headers={"x-goog-api-key": GM_KEY})
    eq(st, 404, "other method")
    st, _, b = post("/v1/models/m:generateContent", gm_body(), key=None,
                    headers={"x-goog-api-key": GM_KEY})
    eq(st, 200, "v1")
    log = control("GET", "/_emu/requests")[1]
    eq([(e["model"], e["dialect"]) for e in log],
       [("tuned/my model:v1", "gemini"), ("m", "gemini"), (None, None), ("m", "gemini")],
       "log")
    eq(log[0]["path"], "/v1beta/models/tuned%2Fmy%20model%3Av1:generateContent", "raw path")


@test
def dialects_share_the_core():
    reset()
    # one wildcard script in the neutral form drives all three dialects
    step = {"text": "same", "thinking": "why",
            "tool_calls": [{"id": "call_1", "name": "f", "arguments": {"a": 1}}]}
    script({"model": "*", "default": step})
    j = json.loads(chat("gpt-x")[2])
    m = j["choices"][0]["message"]
    eq((m["content"], m["reasoning"], m["tool_calls"]),
       ("same", "why", [{"id": "call_1", "type": "function",
                         "function": {"name": "f", "arguments": "{\"a\":1}"}}]), "openai")
    j = json.loads(an_post(an_body("claude-x"))[2])
    eq([b["type"] for b in j["content"]], ["thinking", "text", "tool_use"], "anthropic")
    j = json.loads(gm_post(model="gemini-x")[2])
    eq(len(j["candidates"][0]["content"]["parts"]), 3, "gemini")
    # ids count across dialects; faults and the log are shared
    script({"model": "claude-f", "steps": [{"kind": "truncate"}, {"kind": "garbage"},
                                           {"kind": "raw", "status": 202, "body": "x"}]},
           {"model": "gemini-f", "steps": [{"kind": "close"}, {"kind": "stall", "ms": 50}]})
    raw, _ = raw_exchange(raw_post(an_body("claude-f"), path=AN_PATH,
                                   extra=b"anthropic-version: 1\r\n"))
    st, h, body = split_response(raw)
    eq((st, len(body)), (200, int(h["content-length"]) // 2), "truncate")
    st, h, b = an_post(an_body("claude-f"))
    assert b.startswith(b"<html>"), b
    eq(an_post(an_body("claude-f"))[:3:2], (202, b"x"), "raw")
    for _ in range(2):
        raw, _ = raw_exchange(raw_post(gm_body(), path=gm_path("gemini-f"), key=None,
                                       extra=b"x-goog-api-key: k\r\n"))
        eq(raw, b"", "close / stall")
    st, stats = control("GET", "/_emu/stats")
    eq(stats["by_model"], {"gpt-x": 1, "claude-x": 1, "gemini-x": 1, "claude-f": 3,
                           "gemini-f": 2}, "by_model")
    log = control("GET", "/_emu/requests")[1]
    eq([e["dialect"] for e in log],
       ["openai", "anthropic", "gemini"] + ["anthropic"] * 3 + ["gemini"] * 2, "dialects")
    eq([e["action"] for e in log[3:]], ["truncate", "garbage", "raw", "close", "stall"], "actions")
    eq(json.loads(an_post(an_body("claude-y"))[2])["id"], "msg_emu_9", "shared id counter")
    eq(post("/v1/messages/batches", an_body())[0], 404, "unknown path -> OpenAI-style 404")
    st, _, b = get_raw("/v1/messages")
    eq((st, json.loads(b)["type"]), (405, "error"), "wrong method, Anthropic body")


def get_raw(path):
    c = http.client.HTTPConnection("127.0.0.1", port(), timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    c.close()
    return out


# --------------------------------------------------------------------------

def main():
    global EMU_MAIN
    passed = failed = 0
    EMU_MAIN = Emu()
    try:
        for fn in TESTS:
            if FILTER and FILTER not in fn.__name__:
                continue
            t0 = time.monotonic()
            try:
                fn()
                passed += 1
                if VERBOSE:
                    print("ok   %-32s %.2fs" % (fn.__name__, time.monotonic() - t0))
            except Exception as ex:
                failed += 1
                import traceback
                print("FAIL %s: %s: %s" % (fn.__name__, type(ex).__name__, ex))
                if VERBOSE:
                    traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
    finally:
        try:
            rc, out, err = EMU_MAIN.stop()
            if rc != 0 or out or err:
                failed += 1
                print("FAIL main emulator exit: rc=%r stdout=%r stderr=%r"
                      % (rc, out[:200], err[:500]))
        except Exception as ex:
            failed += 1
            print("FAIL main emulator exit: %s" % ex)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
