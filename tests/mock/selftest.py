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
