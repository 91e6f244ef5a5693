#!/usr/bin/env python3
"""Local LLM provider emulator for libllmroute's integration tests.

Standard library only (Debian's python3 3.11 is enough).  It speaks the
provider wire formats over HTTP/1.1 (optionally TLS), lets a test script
per-model behaviour through a control endpoint (/_emu/...), injects faults,
and records every provider request it received.

The control protocol is documented in tests/mock/README.md.

Layout of this file:
  * State            - scripts, request log and counters (one lock).
  * action checking  - validate_action(), shared by all dialects.
  * Dialect          - per-provider wire format: routing, auth, validation,
                       success / error / stream rendering: OpenAIDialect
                       (/chat/completions), AnthropicDialect (/v1/messages),
                       GeminiDialect (/v1beta/models/{m}:generateContent).
  * Handler          - HTTP plumbing, control endpoints, fault injection.
  * EmulatorServer   - threaded server, TLS wrap per connection.
  * main()           - command line, signals.
"""

import argparse
import collections
import gzip
import http.server
import json
import os
import random
import re as _re
import select
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse

MAX_BODY = 64 * 1024 * 1024          # larger request bodies get 413
IDLE_TIMEOUT_S = 300                  # idle keep-alive connections are closed
HANDSHAKE_TIMEOUT_S = 10
STALL_MAX_S = 60.0

QUIET = False
_log_lock = threading.Lock()
_conn_local = threading.local()     # per-connection thread: id of its TCP connection


_CTRL = {c: "\\x%02x" % c for c in list(range(0x20)) + list(range(0x7f, 0xa0))}


def log(fmt, *args):
    if QUIET:
        return
    try:
        msg = (fmt % args if args else fmt).translate(_CTRL)
        with _log_lock:
            sys.stderr.write("emulator: %s\n" % msg)
            sys.stderr.flush()
    except Exception:
        pass


def dumps(obj, indent=None):
    """JSON text as UTF-8 bytes; raw UTF-8 where possible (like the real
    services), \\u escapes when the data holds lone surrogates."""
    seps = (",", ":") if indent is None else (",", ": ")
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent,
                          separators=seps).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, indent=indent,
                          separators=seps).encode("ascii")


def words(s):
    return len(s.split()) if isinstance(s, str) else 0


def mask_key(key):
    """Mask an API key the way OpenAI does in its 401 message."""
    if key is None:
        return ""
    if len(key) <= 8:
        return key
    return key[:5] + "****" + key[-4:]


# --------------------------------------------------------------------------
# Shared state
# --------------------------------------------------------------------------

class Script:
    __slots__ = ("model", "steps", "default", "require_key", "next")

    def __init__(self, model, steps, default, require_key):
        self.model = model
        self.steps = steps
        self.default = default
        self.require_key = require_key
        self.next = 0


class State:
    def __init__(self, log_limit=0):
        self.lock = threading.Lock()
        self.log_limit = log_limit or None
        self.scripts = {}
        self.log = collections.deque(maxlen=self.log_limit)
        self.requests = 0
        self.by_model = {}
        self.provider_connections = 0
        self.accepted = 0
        self.conn_ids = 0       # never reset, so ids stay unique
        self.epoch = 0
        self.counter = 0

    def reset(self):
        with self.lock:
            self.scripts = {}
            self.log = collections.deque(maxlen=self.log_limit)
            self.requests = 0
            self.by_model = {}
            self.provider_connections = 0
            self.accepted = 0
            self.counter = 0
            self.epoch += 1

    def next_id(self):
        with self.lock:
            self.counter += 1
            return self.counter

    def connection_accepted(self):
        with self.lock:
            self.accepted += 1
            self.conn_ids += 1
            return self.conn_ids

    def install(self, scripts):
        with self.lock:
            for s in scripts:
                self.scripts[s.model] = s

    def _script_for(self, model):
        s = self.scripts.get(model) if isinstance(model, str) else None
        if s is None:
            s = self.scripts.get("*")
        return s

    def require_key(self, model):
        with self.lock:
            s = self._script_for(model)
            return True if s is None else s.require_key

    def take_action(self, model):
        """The action the next request to `model` gets (None = default ok)."""
        with self.lock:
            s = self._script_for(model)
            if s is None:
                return None
            if s.next < len(s.steps):
                a = s.steps[s.next]
                s.next += 1
                return a
            return s.default

    def record(self, entry, conn):
        """Log a provider request; count its connection once per epoch."""
        with self.lock:
            self.requests += 1
            m = entry.get("model")
            if isinstance(m, str):
                self.by_model[m] = self.by_model.get(m, 0) + 1
            if conn.counted_epoch != self.epoch:
                conn.counted_epoch = self.epoch
                self.provider_connections += 1
            self.log.append(entry)
            return entry

    def annotate(self, entry, key, value):
        with self.lock:       # entries are serialised under the same lock
            entry[key] = value

    def snapshot_log(self):
        with self.lock:
            return dumps(list(self.log))

    def snapshot_stats(self):
        with self.lock:
            return dumps({
                "requests": self.requests,
                "by_model": dict(self.by_model),
                "connections": self.provider_connections,
                "connections_accepted": self.accepted,
            })


# --------------------------------------------------------------------------
# Actions (dialect-neutral)
# --------------------------------------------------------------------------

KINDS = ("ok", "error", "close", "truncate", "garbage", "raw", "stall", "big")
CHUNKINGS = ("event", "byte", "random", "block")


def _nonneg_int(a, key):
    v = a.get(key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise ValueError("%s must be a non-negative number" % key)


def _check_headers(h):
    if h is None:
        return
    if isinstance(h, dict):
        items = list(h.items())
    elif isinstance(h, list):
        items = h
    else:
        raise ValueError("headers must be an object or a list of [name, value]")
    for it in items:
        if not (isinstance(it, (list, tuple)) and len(it) == 2 and isinstance(it[0], str)
                and it[0] and isinstance(it[1], (str, int, float))):
            raise ValueError("bad header entry %r" % (it,))


def validate_action(a, presets):
    if a is None:
        return None
    if not isinstance(a, dict):
        raise ValueError("an action must be an object")
    kind = a.get("kind", "ok")
    if kind not in KINDS:
        raise ValueError("unknown action kind %r (known: %s)" % (kind, ", ".join(KINDS)))
    for key in ("delay_ms", "event_delay_ms", "drop_after_events",
                "error_after_events", "ms", "bytes", "piece_chars"):
        _nonneg_int(a, key)
    if a.get("piece_chars") == 0:
        raise ValueError("piece_chars must be > 0")
    if "status" in a and a["status"] is not None:
        st = a["status"]
        if isinstance(st, bool) or not isinstance(st, int) or not 100 <= st <= 999:
            raise ValueError("status must be an integer 100..999")
    _check_headers(a.get("headers"))
    if "text" in a and a["text"] is not None and not isinstance(a["text"], str):
        raise ValueError("text must be a string or null")
    for key in ("reasoning", "thinking"):
        if key in a and a[key] is not None and not isinstance(a[key], str):
            raise ValueError("%s must be a string or null" % key)
    for key in ("finish_reason", "stop_reason", "stop_sequence", "block_reason", "signature",
                "thought_signature", "id"):
        if key in a and a[key] is not None and not isinstance(a[key], str):
            raise ValueError("%s must be a string" % key)
    if "with_ids" in a and not isinstance(a["with_ids"], bool):
        raise ValueError("with_ids must be a boolean")
    if "encoding" in a and a["encoding"] not in (None, "gzip"):
        raise ValueError("encoding must be \"gzip\" (raw bodies only)")
    if "body_prefix" in a and not isinstance(a["body_prefix"], str):
        raise ValueError("body_prefix must be a string")
    if "chunking" in a and a["chunking"] not in CHUNKINGS:
        raise ValueError("chunking must be one of %s" % ", ".join(CHUNKINGS))
    tc = a.get("tool_calls")
    if tc is not None:
        if not isinstance(tc, list) or not all(isinstance(t, dict) for t in tc):
            raise ValueError("tool_calls must be a list of objects")
        for t in tc:
            if not (isinstance(t.get("function"), dict) or isinstance(t.get("name"), str)):
                raise ValueError("a tool call needs a string name (or an OpenAI function object)")
    for key in ("preset", "error_preset"):
        p = a.get(key)
        if p is not None and p not in presets:
            raise ValueError("unknown %s %r (known: %s)" % (key, p, ", ".join(sorted(presets))))
    if "usage" in a and a["usage"] is not None and not isinstance(a["usage"], dict):
        raise ValueError("usage must be an object")
    return a


def parse_scripts(doc, presets):
    """Turn a POST /_emu/script body (object or list) into Script objects."""
    items = doc if isinstance(doc, list) else [doc]
    out = []
    for i, it in enumerate(items):
        where = "script[%d]: " % i
        if not isinstance(it, dict):
            raise ValueError(where + "must be an object")
        model = it.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError(where + "model must be a non-empty string")
        steps = it.get("steps", [])
        if steps is None:
            steps = []
        if not isinstance(steps, list):
            raise ValueError(where + "steps must be a list")
        try:
            for s in steps:
                validate_action(s, presets)
            validate_action(it.get("default"), presets)
        except ValueError as e:
            raise ValueError(where + str(e))
        rk = it.get("require_key", True)
        if not isinstance(rk, bool):
            raise ValueError(where + "require_key must be a boolean")
        out.append(Script(model, list(steps), it.get("default"), rk))
    return out


def neutral_tool_calls(tcs):
    """Tool calls as [{"id": str|None, "name": str, "arguments": obj|str}], from either the
    dialect-neutral form or OpenAI's {"id", "function": {"name", "arguments"}}."""
    out = []
    for t in tcs or []:
        fn = t.get("function")
        if isinstance(fn, dict):
            name, args = fn.get("name", ""), fn.get("arguments", {})
        else:
            name = t.get("name", "")
            args = t.get("arguments", t.get("args", t.get("input", {})))
        out.append({"id": t.get("id"), "name": name if isinstance(name, str) else "",
                    "arguments": {} if args is None else args})
    return out


def args_obj(args):
    """Tool arguments as an object: a JSON string is parsed; anything else unusable is {}."""
    if isinstance(args, dict):
        return args
    if isinstance(args, str):
        try:
            v = json.loads(args) if args.strip() else {}
        except ValueError:
            return {}
        return v if isinstance(v, dict) else {}
    return {}


def args_text(args):
    """Tool arguments as JSON text: an object is serialised compactly, a string is kept
    verbatim (so a script can stream deliberately broken JSON)."""
    if isinstance(args, str):
        return args
    return json.dumps(args if args is not None else {}, ensure_ascii=False,
                      separators=(",", ":"))


def pieces(s, n):
    return [s[i:i + n] for i in range(0, len(s), n)] if s else []


class Answer:
    """What a successful reply says, before a dialect renders it."""

    def __init__(self, text, reasoning, tool_calls, finish_reason, usage):
        self.text = text
        self.reasoning = reasoning
        self.tool_calls = tool_calls
        self.finish_reason = finish_reason
        self.usage = usage


def prompt_text_words(messages):
    n = 0
    if not isinstance(messages, list):
        return 0
    for m in messages:
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        if isinstance(c, str):
            n += words(c)
        elif isinstance(c, list):
            for p in c:
                if isinstance(p, dict) and isinstance(p.get("text"), str):
                    n += words(p["text"])
    return n


class Ctx:
    """Per-request facts a dialect needs to render a reply."""

    def __init__(self, req, model, key, resp_id, created):
        self.req = req
        self.model = model
        self.key = key
        self.resp_id = resp_id
        self.created = created


# --------------------------------------------------------------------------
# Dialects
# --------------------------------------------------------------------------

class Reply:
    def __init__(self, status, body, headers=None, content_type="application/json"):
        self.status = status
        self.body = body if isinstance(body, bytes) else dumps(body)
        self.headers = headers or []
        self.content_type = content_type


class Dialect:
    """One provider wire format.  The core handles transport, scripting,
    logging and fault injection; a dialect only maps requests and answers
    to bytes.  To add one, subclass this, fill in every method, and append
    an instance to DIALECTS."""

    name = "base"
    presets = {}            # preset name -> default HTTP status
    json_ctype = "application/json"     # Content-Type of JSON replies

    def make_id(self, n):
        """Response id for the n-th response since the last reset."""
        return "emu-%d" % n

    def extra_headers(self, ctx):
        """Headers the provider adds to every reply (list of pairs)."""
        return []

    def stream_ctype(self, req):
        return "text/event-stream"

    def matches(self, method, path):
        """True when this dialect owns the (method, path) pair."""
        raise NotImplementedError

    def model(self, req):
        """Model id named by the request (body or path), or None."""
        raise NotImplementedError

    def api_key(self, req):
        """The API key sent, or None when absent/malformed."""
        raise NotImplementedError

    def auth_error(self, req, key):
        """Reply rejecting a missing (key None) or bad key, or None if accepted."""
        raise NotImplementedError

    def validate(self, req):
        """Reply for an invalid request, or None."""
        raise NotImplementedError

    def wants_stream(self, req):
        raise NotImplementedError

    def default_answer(self, ctx, action):
        raise NotImplementedError

    def success_body(self, ctx, answer):
        """Non-stream success as bytes."""
        raise NotImplementedError

    def stream_events(self, ctx, answer, action):
        """List of complete SSE events (bytes) for a successful stream."""
        raise NotImplementedError

    def stream_error_event(self, ctx, action):
        raise NotImplementedError

    def error(self, ctx, preset, status):
        """(status, body object) for a preset; status may be None."""
        raise NotImplementedError

    def not_found(self, method, path):
        raise NotImplementedError


def _oa_err(message, type_, param=None, code=None):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


OA_PARSE_MSG = ("We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON. If you have trouble figuring "
                "out how to fix this, please contact us through our help center at "
                "help.openai.com.)")
OA_NOKEY_MSG = ("You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.")
OA_VALID_ROLES = ("system", "developer", "user", "assistant", "tool")


def _type_name(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a decimal"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


class OpenAIDialect(Dialect):
    """OpenAI Chat Completions (also OpenRouter, Groq, DeepSeek, Mistral,
    Ollama /v1): POST <any prefix>/chat/completions."""

    name = "openai"

    def make_id(self, n):
        return "chatcmpl-emu-%d" % n

    presets = {
        "rate_limit": 429, "quota": 429, "server_error": 500, "overloaded": 503,
        "bad_gateway": 502, "invalid_request": 400, "context_length": 400,
        "auth": 401, "permission": 403, "not_found": 404, "credits": 402,
        "timeout": 408,
    }
    by_status = {429: "rate_limit", 500: "server_error", 503: "overloaded",
                 502: "bad_gateway", 400: "invalid_request", 401: "auth",
                 403: "permission", 404: "not_found", 402: "credits", 408: "timeout"}

    def matches(self, method, path):
        return path.endswith("/chat/completions") or path == "/chat/completions"

    def model(self, req):
        b = req.body
        if req.json_ok and isinstance(b, dict) and isinstance(b.get("model"), str):
            return b["model"]
        return None

    def api_key(self, req):
        h = req.headers.get("authorization")
        if not h:
            return None
        parts = h.strip().split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].strip():
            return None
        return parts[1].strip()

    def auth_error(self, req, key):
        if key is None:
            return Reply(401, _oa_err(OA_NOKEY_MSG, "invalid_request_error"))
        if key == "bad-key":
            return Reply(401, self._bad_key_body(key))
        return None

    def _bad_key_body(self, key):
        return _oa_err("Incorrect API key provided: %s. You can find your API key at "
                       "https://platform.openai.com/account/api-keys." % mask_key(key),
                       "invalid_request_error", None, "invalid_api_key")

    def validate(self, req):
        ct = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ct != "application/json" or not req.json_ok:
            return Reply(400, _oa_err(OA_PARSE_MSG, "invalid_request_error"))
        b = req.body
        if not isinstance(b, dict):
            return Reply(400, _oa_err("Invalid type for request body: expected an object, but "
                                      "got %s instead." % _type_name(b),
                                      "invalid_request_error", None, "invalid_type"))
        if "model" not in b:
            return Reply(400, _oa_err("you must provide a model parameter",
                                      "invalid_request_error"))
        if not isinstance(b["model"], str):
            return Reply(400, _oa_err("Invalid type for 'model': expected a string, but got "
                                      "%s instead." % _type_name(b["model"]),
                                      "invalid_request_error", "model", "invalid_type"))
        if "messages" not in b:
            return Reply(400, _oa_err("Missing required parameter: 'messages'.",
                                      "invalid_request_error", "messages",
                                      "missing_required_parameter"))
        msgs = b["messages"]
        if not isinstance(msgs, list):
            return Reply(400, _oa_err("Invalid type for 'messages': expected an array of "
                                      "objects, but got %s instead." % _type_name(msgs),
                                      "invalid_request_error", "messages", "invalid_type"))
        if not msgs:
            return Reply(400, _oa_err("Invalid 'messages': empty array. Expected an array "
                                      "with minimum length 1, but got an empty array instead.",
                                      "invalid_request_error", "messages",
                                      "empty_array"))
        for i, m in enumerate(msgs):
            p = "messages[%d]" % i
            if not isinstance(m, dict):
                return Reply(400, _oa_err("Invalid type for '%s': expected an object, but got "
                                          "%s instead." % (p, _type_name(m)),
                                          "invalid_request_error", p, "invalid_type"))
            if "role" not in m:
                return Reply(400, _oa_err("Missing required parameter: '%s.role'." % p,
                                          "invalid_request_error", p + ".role",
                                          "missing_required_parameter"))
            if m["role"] not in OA_VALID_ROLES:
                shown = m["role"] if isinstance(m["role"], str) else json.dumps(m["role"])
                return Reply(400, _oa_err("Invalid value: '%s'. Supported values are: "
                                          "'system', 'assistant', 'user', 'tool', and "
                                          "'developer'." % shown,
                                          "invalid_request_error", p + ".role",
                                          "invalid_value"))
        if "stream" in b and not isinstance(b["stream"], bool) and b["stream"] is not None:
            return Reply(400, _oa_err("Invalid type for 'stream': expected a boolean, but got "
                                      "%s instead." % _type_name(b["stream"]),
                                      "invalid_request_error", "stream", "invalid_type"))
        return None

    def wants_stream(self, req):
        return isinstance(req.body, dict) and req.body.get("stream") is True

    def _include_usage(self, req):
        so = req.body.get("stream_options") if isinstance(req.body, dict) else None
        return isinstance(so, dict) and so.get("include_usage") is True

    # ---- success ----------------------------------------------------------

    @staticmethod
    def _norm_tool_calls(tcs):
        out = []
        for t in tcs or []:
            t = dict(t)
            if "function" not in t and "name" in t:
                # dialect-neutral form {"id", "name", "arguments"}
                n = {"id": t["id"]} if t.get("id") is not None else {}
                n["type"] = "function"
                n["function"] = {"name": t["name"], "arguments": t.get("arguments", {})}
                t = n
            fn = t.get("function")
            if isinstance(fn, dict):
                fn = dict(fn)
                if not isinstance(fn.get("arguments"), str) and "arguments" in fn:
                    fn["arguments"] = json.dumps(fn["arguments"], separators=(",", ":"))
                t["function"] = fn
            t.setdefault("type", "function")
            out.append(t)
        return out

    def default_answer(self, ctx, action):
        a = action or {}
        tcs = self._norm_tool_calls(a.get("tool_calls"))
        if "text" in a:
            text = a["text"]
        elif a.get("kind") == "big":
            text = "x" * int(a.get("bytes", 0))
        elif tcs:
            text = None
        else:
            text = "Hello from %s!" % ctx.model
        reasoning = a.get("reasoning", a.get("thinking"))
        fr = a.get("finish_reason") or ("tool_calls" if tcs else "stop")
        usage = a.get("usage")
        if usage is None:
            p = prompt_text_words(ctx.req.body.get("messages")
                                  if isinstance(ctx.req.body, dict) else None)
            r = words(reasoning)
            c = words(text) + r
            for t in tcs:
                fn = t.get("function") if isinstance(t.get("function"), dict) else {}
                c += words(fn.get("name")) + words(fn.get("arguments"))
            usage = {
                "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": r, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0},
            }
        return Answer(text, reasoning, tcs, fr, usage)

    def success_body(self, ctx, ans):
        msg = {"role": "assistant", "content": ans.text, "refusal": None, "annotations": []}
        if ans.reasoning is not None:
            msg["reasoning"] = ans.reasoning
        if ans.tool_calls:
            msg["tool_calls"] = ans.tool_calls
        body = {
            "id": ctx.resp_id, "object": "chat.completion", "created": ctx.created,
            "model": ctx.model,
            "choices": [{"index": 0, "message": msg, "logprobs": None,
                         "finish_reason": ans.finish_reason}],
            "usage": ans.usage, "service_tier": "default", "system_fingerprint": "fp_emu",
        }
        return dumps(body, indent=2)   # OpenAI pretty-prints non-stream bodies

    def _chunk(self, ctx, choices, with_usage, usage=None):
        c = {"id": ctx.resp_id, "object": "chat.completion.chunk", "created": ctx.created,
             "model": ctx.model, "service_tier": "default", "system_fingerprint": "fp_emu",
             "choices": choices}
        if with_usage:
            c["usage"] = usage
        return b"data: " + dumps(c) + b"\n\n"

    @staticmethod
    def _pieces(s, n):
        return [s[i:i + n] for i in range(0, len(s), n)] if s else []

    def stream_events(self, ctx, ans, action):
        a = action or {}
        inc = self._include_usage(ctx.req)
        n = int(a.get("piece_chars") or (4096 if a.get("kind") == "big" else 4))
        ev = []

        def delta(d, fr=None):
            return self._chunk(ctx, [{"index": 0, "delta": d, "logprobs": None,
                                      "finish_reason": fr}], inc)

        ev.append(delta({"role": "assistant",
                         "content": "" if (ans.text is not None or not ans.tool_calls) else None}))
        for p in self._pieces(ans.reasoning, n):
            ev.append(delta({"reasoning": p}))
        for p in self._pieces(ans.text, n):
            ev.append(delta({"content": p}))
        for i, t in enumerate(ans.tool_calls):
            fn = t.get("function") if isinstance(t.get("function"), dict) else {}
            first = {"index": i}
            if "id" in t:
                first["id"] = t["id"]
            first["type"] = t.get("type", "function")
            first["function"] = {"name": fn.get("name", ""), "arguments": ""}
            ev.append(delta({"tool_calls": [first]}))
            args = fn.get("arguments", "")
            for p in self._pieces(args if isinstance(args, str) else "", n):
                ev.append(delta({"tool_calls": [{"index": i, "function": {"arguments": p}}]}))
        ev.append(delta({}, ans.finish_reason))
        if inc:
            ev.append(self._chunk(ctx, [], True, ans.usage))
        ev.append(b"data: [DONE]\n\n")
        return ev

    def stream_error_event(self, ctx, action):
        eb = action.get("error_body")
        if eb is None:
            _, eb = self.error(ctx, action.get("error_preset") or "server_error", None)
        if isinstance(eb, str):
            return b"data: " + eb.encode("utf-8", "surrogatepass") + b"\n\n"
        if not (isinstance(eb, dict) and "error" in eb):
            eb = {"error": eb}
        return b"data: " + dumps(eb) + b"\n\n"

    # ---- errors -----------------------------------------------------------

    def error(self, ctx, preset, status):
        if preset is None:
            preset = self.by_status.get(status, "server_error")
        model = ctx.model if ctx else "unknown"
        if preset == "rate_limit":
            b = _oa_err("Rate limit reached for %s in organization org-emu on requests per min "
                        "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
                        "https://platform.openai.com/account/rate-limits to learn more." % model,
                        "requests", None, "rate_limit_exceeded")
        elif preset == "quota":
            b = _oa_err("You exceeded your current quota, please check your plan and billing "
                        "details. For more information on this error, read the docs: "
                        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                        "insufficient_quota", None, "insufficient_quota")
        elif preset == "server_error":
            b = _oa_err("The server had an error while processing your request. Sorry about "
                        "that!", "server_error")
        elif preset == "overloaded":
            b = _oa_err("The server is overloaded or not ready yet.", "server_error")
        elif preset == "bad_gateway":
            # What OpenAI's edge (Cloudflare) sends.
            b = {"error": {"code": 502, "message": "Bad gateway.", "param": None,
                           "type": "cf_bad_gateway"}}
        elif preset == "invalid_request":
            b = _oa_err("Invalid 'temperature': decimal above maximum value. Expected a value "
                        "<= 2, but got 5 instead.", "invalid_request_error", "temperature",
                        "decimal_above_max_value")
        elif preset == "context_length":
            b = _oa_err("This model's maximum context length is 128000 tokens. However, your "
                        "messages resulted in 130017 tokens. Please reduce the length of the "
                        "messages.", "invalid_request_error", "messages",
                        "context_length_exceeded")
        elif preset == "auth":
            b = self._bad_key_body(ctx.key if ctx and ctx.key else "sk-emu-invalid-0000")
        elif preset == "permission":
            b = _oa_err("Country, region, or territory not supported", "request_forbidden",
                        None, "unsupported_country_region_territory")
        elif preset == "not_found":
            b = _oa_err("The model `%s` does not exist or you do not have access to it."
                        % model, "invalid_request_error", None, "model_not_found")
        elif preset == "credits":
            # OpenRouter's shape: numeric code, no type.
            b = {"error": {"code": 402, "message": "Insufficient credits. Add more using "
                           "https://openrouter.ai/settings/credits", "metadata": {}}}
        elif preset == "timeout":
            b = _oa_err("Request timed out.", "timeout", None, "request_timeout")
        else:
            b = _oa_err("Unknown error preset %s" % preset, "server_error")
        return (status if status is not None else self.presets.get(preset, 500)), b

    def not_found(self, method, path):
        if self.matches(method, path):
            return Reply(405, _oa_err("Invalid method for URL (%s %s)" % (method, path),
                                      "invalid_request_error"))
        return Reply(404, _oa_err("Invalid URL (%s %s)" % (method, path),
                                  "invalid_request_error"))


# ---- Anthropic Messages -------------------------------------------------

AN_TOP_FIELDS = ("model", "messages", "max_tokens", "cache_control", "container", "inference_geo",
                 "metadata", "output_config", "service_tier", "stop_sequences", "stream",
                 "system", "temperature", "thinking", "tool_choice", "tools", "top_k", "top_p")
# content block type -> (required fields, allowed fields)
AN_BLOCKS = {
    "text": (("text",), ("type", "text", "cache_control", "citations")),
    "image": (("source",), ("type", "source", "cache_control")),
    "document": (("source",), ("type", "source", "cache_control", "citations", "context",
                               "title")),
    "search_result": (("source", "title", "content"), ("type", "source", "title", "content",
                                                       "cache_control", "citations")),
    "thinking": (("thinking", "signature"), ("type", "thinking", "signature")),
    "redacted_thinking": (("data",), ("type", "data")),
    "tool_use": (("id", "name", "input"), ("type", "id", "name", "input", "cache_control")),
    "tool_result": (("tool_use_id",), ("type", "tool_use_id", "content", "is_error",
                                       "cache_control")),
}
AN_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
AN_TOOL_FIELDS = ("type", "name", "description", "input_schema", "cache_control", "strict")
AN_VERSION_DOC = ("https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
                  "#max-tokens-and-context-window-size")
AN_SIGNATURE = "ZW11bGF0b3ItdGhpbmtpbmctc2lnbmF0dXJl"      # base64("emulator-thinking-signature")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _an_request_id():
    return "req_011C" + "".join(random.choice(_B62) for _ in range(20))


def _tags(names):
    names = list(names)
    if len(names) == 1:
        return "'%s'" % names[0]
    return ", ".join("'%s'" % n for n in names)


def _is_int(v):
    return (isinstance(v, int) and not isinstance(v, bool)) or \
        (isinstance(v, float) and v.is_integer())


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class AnthropicDialect(Dialect):
    """Anthropic Messages: POST <any prefix>/v1/messages."""

    name = "anthropic"
    presets = {
        "rate_limit": 429, "overloaded": 529, "server_error": 500, "invalid_request": 400,
        "auth": 401, "permission": 403, "not_found": 404, "context_length": 400,
        "too_large": 413,
    }
    by_status = {400: "invalid_request", 401: "auth", 403: "permission", 404: "not_found",
                 413: "too_large", 429: "rate_limit", 500: "server_error", 529: "overloaded"}
    status_types = {400: "invalid_request_error", 401: "authentication_error",
                    402: "billing_error", 403: "permission_error", 404: "not_found_error",
                    413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                    529: "overloaded_error"}

    def make_id(self, n):
        return "msg_emu_%d" % n

    def matches(self, method, path):
        return path.endswith("/v1/messages")

    def model(self, req):
        b = req.body
        if req.json_ok and isinstance(b, dict) and isinstance(b.get("model"), str):
            return b["model"]
        return None

    def api_key(self, req):
        k = req.headers.get("x-api-key")
        if k is not None and k.strip():
            return k.strip()
        h = req.headers.get("authorization")
        if h:
            parts = h.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1].strip():
                return parts[1].strip()
        return None

    @staticmethod
    def _err(type_, message, rid=None):
        return {"type": "error", "error": {"type": type_, "message": message},
                "request_id": rid or _an_request_id()}

    def _errc(self, ctx, type_, message):
        return self._err(type_, message, getattr(ctx, "request_id", None))

    def _reply(self, status, type_, message):
        rid = _an_request_id()
        return Reply(status, self._err(type_, message, rid), [("request-id", rid)])

    def auth_error(self, req, key):
        if key is None:
            return self._reply(401, "authentication_error", "x-api-key header is required")
        if key == "bad-key":
            return self._reply(401, "authentication_error", "invalid x-api-key")
        return None

    def extra_headers(self, ctx):
        ctx.request_id = _an_request_id()       # error bodies repeat it as request_id
        return [("request-id", ctx.request_id)]

    # ---- validation ---------------------------------------------------------

    def validate(self, req):
        if not req.headers.get("anthropic-version", "").strip():
            return self._reply(400, "invalid_request_error",
                               "anthropic-version: header is required")
        msg = self._check(req)
        if msg is not None:
            return self._reply(400, "invalid_request_error", msg)
        return None

    def _check(self, req):
        if not req.json_ok:
            return "The request body is not valid JSON: %s" % (
                req.json_error or "Expecting value: line 1 column 1 (char 0)")
        b = req.body
        if not isinstance(b, dict):
            return "Input should be a valid dictionary or object to extract fields from"
        for k in b:
            if k not in AN_TOP_FIELDS:
                return "%s: Extra inputs are not permitted" % k
        if "model" not in b:
            return "model: Field required"
        if not isinstance(b["model"], str):
            return "model: Input should be a valid string"
        if "max_tokens" not in b:
            return "max_tokens: Field required"
        mt = b["max_tokens"]
        if not _is_int(mt):
            return "max_tokens: Input should be a valid integer"
        if mt < 0:
            return "max_tokens: Input should be greater than or equal to 0"
        if "messages" not in b:
            return "messages: Field required"
        msgs = b["messages"]
        if not isinstance(msgs, list):
            return "messages: Input should be a valid list"
        if not msgs:
            return "messages: at least one message is required"
        for i, m in enumerate(msgs):
            e = self._check_message(i, m, i == len(msgs) - 1)
            if e:
                return e
        e = self._check_tool_pairs(msgs)
        if e:
            return e
        if "system" in b:
            e = self._check_system(b["system"])
            if e:
                return e
        if "tools" in b:
            e = self._check_tools(b["tools"])
            if e:
                return e
        if "thinking" in b:
            e = self._check_thinking(b["thinking"], mt)
            if e:
                return e
        if "temperature" in b:
            t = b["temperature"]
            if not _is_num(t):
                return "temperature: Input should be a valid number"
            if not 0 <= t <= 1:
                return "temperature: range: 0..1"
        if "stream" in b and not isinstance(b["stream"], bool):
            return "stream: Input should be a valid boolean"
        return None

    def _check_message(self, i, m, last):
        p = "messages.%d" % i
        if not isinstance(m, dict):
            return "%s: Input should be a valid dictionary or object to extract fields from" % p
        if "role" not in m:
            return "%s.role: Field required" % p
        if m["role"] == "system":
            return ('messages: Unexpected role "system". The Messages API accepts a top-level '
                    '`system` parameter, not "system" as an input message role.')
        if m["role"] not in ("user", "assistant"):
            return "%s.role: Input should be 'user' or 'assistant'" % p
        for k in m:
            if k not in ("role", "content"):
                return "%s.%s: Extra inputs are not permitted" % (p, k)
        if "content" not in m:
            return "%s.content: Field required" % p
        c = m["content"]
        final_assistant = last and m["role"] == "assistant"
        if isinstance(c, str):
            if c == "" and not final_assistant:
                return ("%s: all messages must have non-empty content except for the optional "
                        "final assistant message" % p)
            return None
        if not isinstance(c, list):
            return "%s.content: Input should be a valid string or a valid list" % p
        if not c and not final_assistant:
            return ("%s: all messages must have non-empty content except for the optional "
                    "final assistant message" % p)
        for j, blk in enumerate(c):
            e = self._check_block("%s.content.%d" % (p, j), blk)
            if e:
                return e
        return None

    def _check_block(self, p, blk, allowed=None):
        if not isinstance(blk, dict):
            return "%s: Input should be a valid dictionary or object to extract fields from" % p
        if "type" not in blk:
            return "%s: Unable to extract tag using discriminator 'type'" % p
        t = blk["type"]
        kinds = allowed or AN_BLOCKS
        if not isinstance(t, str) or t not in kinds:
            return ("%s: Input tag '%s' found using 'type' does not match any of the expected "
                    "tags: %s" % (p, t if isinstance(t, str) else json.dumps(t), _tags(kinds)))
        required, known = AN_BLOCKS[t]
        for k in blk:
            if k not in known:
                return "%s.%s.%s: Extra inputs are not permitted" % (p, t, k)
        for k in required:
            if k not in blk:
                return "%s.%s.%s: Field required" % (p, t, k)
        if t == "text":
            if not isinstance(blk["text"], str):
                return "%s.text.text: Input should be a valid string" % p
            if blk["text"] == "":
                return "messages: text content blocks must be non-empty"
            if not blk["text"].strip():
                return "messages: text content blocks must contain non-whitespace text"
        elif t == "image":
            return self._check_image_source(p + ".image.source", blk["source"])
        elif t == "tool_use":
            for k in ("id", "name"):
                if not isinstance(blk[k], str):
                    return "%s.tool_use.%s: Input should be a valid string" % (p, k)
            if not isinstance(blk["input"], dict):
                return "%s.tool_use.input: Input should be a valid dictionary" % p
        elif t == "tool_result":
            if not isinstance(blk["tool_use_id"], str):
                return "%s.tool_result.tool_use_id: Input should be a valid string" % p
            c = blk.get("content")
            if isinstance(c, list):
                inner = ("text", "image", "document", "search_result")
                for k, sub in enumerate(c):
                    e = self._check_block("%s.tool_result.content.%d" % (p, k), sub, inner)
                    if e:
                        return e
            elif c is not None and not isinstance(c, str):
                return ("%s.tool_result.content: Input should be a valid string or a valid list"
                        % p)
        elif t == "thinking":
            for k in ("thinking", "signature"):
                if not isinstance(blk[k], str):
                    return "%s.thinking.%s: Input should be a valid string" % (p, k)
        return None

    def _check_image_source(self, p, src):
        if not isinstance(src, dict):
            return "%s: Input should be a valid dictionary or object to extract fields from" % p
        st = src.get("type")
        if st is None:
            return "%s: Unable to extract tag using discriminator 'type'" % p
        if st not in ("base64", "url"):
            return ("%s: Input tag '%s' found using 'type' does not match any of the expected "
                    "tags: 'base64', 'url'" % (p, st if isinstance(st, str) else json.dumps(st)))
        fields = ("media_type", "data") if st == "base64" else ("url",)
        for k in src:
            if k not in fields + ("type",):
                return "%s.%s.%s: Extra inputs are not permitted" % (p, st, k)
        for k in fields:
            if k not in src:
                return "%s.%s.%s: Field required" % (p, st, k)
        if st == "base64" and src["media_type"] not in AN_IMAGE_TYPES:
            return ("%s.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                    "'image/gif' or 'image/webp'" % p)
        return None

    @staticmethod
    def _blocks(m):
        c = m.get("content") if isinstance(m, dict) else None
        return [b for b in c if isinstance(b, dict)] if isinstance(c, list) else []

    def _check_tool_pairs(self, msgs):
        # Unmatched tool_result ids are reported before tool_use ids left without results.
        return self._check_results(msgs) or self._check_uses(msgs)

    def _check_results(self, msgs):
        for i, m in enumerate(msgs):
            if m.get("role") == "user":
                results = [(j, b) for j, b in enumerate(self._blocks(m))
                           if b.get("type") == "tool_result"]
                if results:
                    prev = msgs[i - 1] if i > 0 else {}
                    uses = {b.get("id") for b in self._blocks(prev)
                            if b.get("type") == "tool_use"} if prev.get("role") == "assistant" \
                        else set()
                    bad = [(j, b["tool_use_id"]) for j, b in results
                           if b["tool_use_id"] not in uses]
                    if bad:
                        return ("messages.%d.content.%d: unexpected `tool_use_id` found in "
                                "`tool_result` blocks: %s. Each `tool_result` block must have a "
                                "corresponding `tool_use` block in the previous message."
                                % (i, bad[0][0], ", ".join(x for _, x in bad)))
        return None

    def _check_uses(self, msgs):
        for i, m in enumerate(msgs):
            if m.get("role") == "assistant" and i + 1 < len(msgs):
                uses = [b.get("id") for b in self._blocks(m) if b.get("type") == "tool_use"]
                if uses:
                    nxt = msgs[i + 1]
                    got = {b.get("tool_use_id") for b in self._blocks(nxt)
                           if b.get("type") == "tool_result"} if nxt.get("role") == "user" \
                        else set()
                    missing = [u for u in uses if u not in got]
                    if missing:
                        return ("messages.%d: `tool_use` ids were found without `tool_result` "
                                "blocks immediately after: %s. Each `tool_use` block must have "
                                "a corresponding `tool_result` block in the next message."
                                % (i, ", ".join(str(x) for x in missing)))
        return None

    def _check_system(self, sysv):
        if isinstance(sysv, str):
            return None
        if not isinstance(sysv, list):
            return "system: Input should be a valid string or a valid list"
        for j, blk in enumerate(sysv):
            e = self._check_block("system.%d" % j, blk, ("text",))
            if e:
                return e.replace("messages: text content", "system: text content")
        return None

    def _check_tools(self, tools):
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, t in enumerate(tools):
            p = "tools.%d" % i
            if not isinstance(t, dict):
                return "%s: Input should be a valid dictionary or object to extract fields from" % p
            if t.get("type") not in (None, "custom"):
                continue                    # a server tool (web_search_..., bash_..., ...)
            p += ".custom"
            for k in t:
                if k not in AN_TOOL_FIELDS:
                    return "%s.%s: Extra inputs are not permitted" % (p, k)
            if "name" not in t:
                return "%s.name: Field required" % p
            if not isinstance(t["name"], str) or not t["name"] or len(t["name"]) > 128 or \
                    any(ch not in _B62 + "_-" for ch in t["name"]):
                return "%s.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'" % p
            if "input_schema" not in t:
                return "%s.input_schema: Field required" % p
            if not isinstance(t["input_schema"], dict):
                return "%s.input_schema: Input should be a valid dictionary" % p
        return None

    def _check_thinking(self, th, max_tokens):
        if not isinstance(th, dict):
            return "thinking: Input should be a valid dictionary or object to extract fields from"
        t = th.get("type")
        if t is None:
            return "thinking: Unable to extract tag using discriminator 'type'"
        if not isinstance(t, str) or t not in ("adaptive", "disabled", "enabled"):
            return ("thinking: Input tag '%s' found using 'type' does not match any of the "
                    "expected tags: 'adaptive', 'disabled', 'enabled'"
                    % (t if isinstance(t, str) else json.dumps(t)))
        if t != "enabled":
            return None
        if "budget_tokens" not in th:
            return "thinking.enabled.budget_tokens: Field required"
        bt = th["budget_tokens"]
        if not _is_int(bt):
            return "thinking.enabled.budget_tokens: Input should be a valid integer"
        if bt < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if bt >= max_tokens:
            return ("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
                    "our documentation at " + AN_VERSION_DOC)
        return None

    def wants_stream(self, req):
        return isinstance(req.body, dict) and req.body.get("stream") is True

    # ---- success ------------------------------------------------------------

    @staticmethod
    def _prompt_words(body):
        if not isinstance(body, dict):
            return 0
        n = 0
        sysv = body.get("system")
        if isinstance(sysv, str):
            n += words(sysv)
        elif isinstance(sysv, list):
            n += sum(words(b.get("text")) for b in sysv if isinstance(b, dict))
        for m in body.get("messages") or []:
            c = m.get("content") if isinstance(m, dict) else None
            if isinstance(c, str):
                n += words(c)
            elif isinstance(c, list):
                for b in c:
                    if not isinstance(b, dict):
                        continue
                    n += words(b.get("text"))
                    if isinstance(b.get("content"), str):
                        n += words(b["content"])
                    elif isinstance(b.get("content"), list):
                        n += sum(words(x.get("text")) for x in b["content"]
                                 if isinstance(x, dict))
        return n

    def default_answer(self, ctx, action):
        a = action or {}
        tcs = neutral_tool_calls(a.get("tool_calls"))
        for i, t in enumerate(tcs):
            if not t["id"]:
                t["id"] = "toolu_%s_%d" % (ctx.resp_id.replace("msg_", ""), i)
        if "text" in a:
            text = a["text"]
        elif a.get("kind") == "big":
            text = "x" * int(a.get("bytes", 0))
        elif tcs:
            text = None
        else:
            text = "Hello from %s!" % ctx.model
        thinking = a.get("thinking", a.get("reasoning"))
        stop = a.get("stop_reason") or (
            "tool_use" if tcs else ("stop_sequence" if a.get("stop_sequence") else "end_turn"))
        usage = a.get("usage")
        if usage is None:
            p = self._prompt_words(ctx.req.body)
            c = words(text) + words(thinking)
            for t in tcs:
                c += words(t["name"]) + words(args_text(t["arguments"]))
            usage = {"input_tokens": p, "cache_creation_input_tokens": 0,
                     "cache_read_input_tokens": 0,
                     "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                        "ephemeral_1h_input_tokens": 0},
                     "output_tokens": c, "service_tier": "standard"}
        ans = Answer(text, thinking, tcs, stop, usage)
        ans.signature = a.get("signature") or AN_SIGNATURE
        ans.stop_sequence = a.get("stop_sequence")
        return ans

    def _content(self, ans):
        out = []
        if ans.reasoning is not None:
            out.append({"type": "thinking", "thinking": ans.reasoning,
                        "signature": ans.signature})
        if ans.text:
            out.append({"type": "text", "text": ans.text})
        for t in ans.tool_calls:
            out.append({"type": "tool_use", "id": t["id"], "name": t["name"],
                        "input": args_obj(t["arguments"])})
        return out

    def success_body(self, ctx, ans):
        return dumps({"id": ctx.resp_id, "type": "message", "role": "assistant",
                      "model": ctx.model, "content": self._content(ans),
                      "stop_reason": ans.finish_reason, "stop_sequence": ans.stop_sequence,
                      "usage": ans.usage})

    @staticmethod
    def _event(obj):
        return b"event: " + obj["type"].encode() + b"\ndata: " + dumps(obj) + b"\n\n"

    def stream_events(self, ctx, ans, action):
        a = action or {}
        n = int(a.get("piece_chars") or (4096 if a.get("kind") == "big" else 4))
        u = ans.usage if isinstance(ans.usage, dict) else {}
        out_tokens = u.get("output_tokens", 0)
        start_usage = dict(u)
        if "output_tokens" in start_usage:
            start_usage["output_tokens"] = min(1, out_tokens) if _is_num(out_tokens) else 1
        ev = [self._event({"type": "message_start", "message": {
            "id": ctx.resp_id, "type": "message", "role": "assistant", "model": ctx.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}})]
        idx = 0

        def block(start, deltas):
            nonlocal idx
            ev.append(self._event({"type": "content_block_start", "index": idx,
                                   "content_block": start}))
            if idx == 0:
                ev.append(self._event({"type": "ping"}))
            for d in deltas:
                ev.append(self._event({"type": "content_block_delta", "index": idx,
                                       "delta": d}))
            ev.append(self._event({"type": "content_block_stop", "index": idx}))
            idx += 1

        if ans.reasoning is not None:
            block({"type": "thinking", "thinking": "", "signature": ""},
                  [{"type": "thinking_delta", "thinking": p} for p in pieces(ans.reasoning, n)]
                  + [{"type": "signature_delta", "signature": ans.signature}])
        if ans.text:
            block({"type": "text", "text": ""},
                  [{"type": "text_delta", "text": p} for p in pieces(ans.text, n)])
        for t in ans.tool_calls:
            frags = [""] + pieces(args_text(t["arguments"]), n)
            block({"type": "tool_use", "id": t["id"], "name": t["name"], "input": {}},
                  [{"type": "input_json_delta", "partial_json": f} for f in frags])
        if idx == 0:
            ev.append(self._event({"type": "ping"}))
        du = {k: u[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                "cache_read_input_tokens") if k in u}
        du["output_tokens"] = out_tokens
        for k in ("server_tool_use",):
            if k in u:
                du[k] = u[k]
        ev.append(self._event({"type": "message_delta",
                               "delta": {"stop_reason": ans.finish_reason,
                                         "stop_sequence": ans.stop_sequence},
                               "usage": du}))
        ev.append(self._event({"type": "message_stop"}))
        return ev

    def stream_error_event(self, ctx, action):
        eb = action.get("error_body")
        if eb is None:
            _, eb = self.error(ctx, action.get("error_preset") or "overloaded", None)
            eb = {"type": "error", "error": eb["error"]}     # no request_id in the stream
        if isinstance(eb, str):
            return b"event: error\ndata: " + eb.encode("utf-8", "surrogatepass") + b"\n\n"
        if not (isinstance(eb, dict) and "error" in eb):
            eb = {"type": "error", "error": eb}
        return b"event: error\ndata: " + dumps(eb) + b"\n\n"

    # ---- errors -------------------------------------------------------------

    def error(self, ctx, preset, status):
        if preset is None or preset not in self.presets:
            st = status if status is not None else ALL_PRESET_STATUS.get(preset, 500)
            preset = self.by_status.get(st)
            if preset is None:
                t = self.status_types.get(st) or (
                    "invalid_request_error" if 400 <= st < 500 else "api_error")
                msg = "Internal server error" if t == "api_error" else "Request failed"
                return st, self._errc(ctx, t, msg)
            status = st
        model = ctx.model if ctx else "unknown"
        if preset == "rate_limit":
            b = self._errc(ctx, "rate_limit_error",
                          "Number of request tokens has exceeded your per-minute rate limit "
                          "(https://docs.anthropic.com/en/api/rate-limits); see the response "
                          "headers for current usage. Please reduce the prompt length or the "
                          "maximum tokens requested, or try again later. You may also contact "
                          "sales at https://www.anthropic.com/contact-sales to discuss your "
                          "options for a rate limit increase.")
        elif preset == "overloaded":
            b = self._errc(ctx, "overloaded_error", "Overloaded")
        elif preset == "server_error":
            b = self._errc(ctx, "api_error", "Internal server error")
        elif preset == "invalid_request":
            b = self._errc(ctx, "invalid_request_error",
                          "max_tokens: 100000 > 64000, which is the maximum allowed number of "
                          "output tokens for %s" % model)
        elif preset == "auth":
            b = self._errc(ctx, "authentication_error", "invalid x-api-key")
        elif preset == "permission":
            b = self._errc(ctx, "permission_error",
                          "Your API key does not have permission to use the specified resource.")
        elif preset == "not_found":
            b = self._errc(ctx, "not_found_error", "model: %s" % model)
        elif preset == "context_length":
            b = self._errc(ctx, "invalid_request_error",
                          "prompt is too long: 208310 tokens > 200000 maximum")
        else:                                                   # too_large
            # Sent by Anthropic's Cloudflare edge: no top-level type, no request_id.
            b = {"error": {"type": "request_too_large",
                           "message": "Request exceeds the maximum size"}}
        return (status if status is not None else self.presets[preset]), b

    def not_found(self, method, path):
        return Reply(405, self._err("invalid_request_error",
                                    "Method Not Allowed: %s %s" % (method, path)))


# ---- Gemini (generativelanguage v1beta) ---------------------------------

GM_PATH = _re.compile(r"^(.*)/(v1beta|v1|v1alpha)/models/([^/:]+):"
                      r"(generateContent|streamGenerateContent)$")
GM_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
GM_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta."
# Known proto fields, in their JSON (lowerCamel) spelling; the snake_case spelling is
# accepted too, as by Google's proto-JSON parser.
GM_TOP = ("contents", "tools", "toolConfig", "safetySettings", "systemInstruction",
          "generationConfig", "cachedContent", "model")
GM_GENCONFIG = ("stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
                "responseModalities", "candidateCount", "maxOutputTokens", "temperature",
                "topP", "topK", "seed", "presencePenalty", "frequencyPenalty",
                "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig",
                "thinkingConfig", "imageConfig", "mediaResolution")
GM_GEN_FLOAT = ("temperature", "topP", "presencePenalty", "frequencyPenalty")
GM_GEN_INT = ("topK", "candidateCount", "maxOutputTokens", "seed", "logprobs")
GM_THINKING = ("includeThoughts", "thinkingBudget", "thinkingLevel")
GM_CONTENT = ("role", "parts")
GM_PART = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
           "executableCode", "codeExecutionResult", "thought", "thoughtSignature",
           "videoMetadata", "partMetadata", "mediaResolution")
GM_PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
                "executableCode", "codeExecutionResult")
GM_TOOL = ("functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution",
           "urlContext", "computerUse", "fileSearch", "googleMaps", "mcpServers")
GM_FUNC = ("name", "description", "parameters", "parametersJsonSchema", "response",
           "responseJsonSchema", "behavior")
# Schema: "a select subset of an OpenAPI 3.0 schema object". Everything else
# (additionalProperties, $schema, $ref, $defs, const, oneOf, allOf, exclusiveMinimum,
# propertyNames, ...) is an unknown proto field and is rejected.
GM_SCHEMA = ("type", "format", "title", "description", "nullable", "enum", "maxItems",
             "minItems", "properties", "required", "minProperties", "maxProperties",
             "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
             "default", "items", "minimum", "maximum")
GM_SCHEMA_TYPES = ("TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY",
                   "OBJECT", "NULL")
GM_FN_NAME = _re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
GM_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
             404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
             500: "INTERNAL", 501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE",
             504: "DEADLINE_EXCEEDED"}
GM_NOKEY_MSG = ("Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.")
GM_BADKEY_MSG = "API key not valid. Please pass a valid API key."


def _snake(name):
    return _re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _camel(name):
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _gdumps(obj):
    """Google's pretty JSON (2-space indent)."""
    return dumps(obj, indent=2)


def _gline(obj):
    """Google's one-line JSON as in SSE chunks: ': ' after keys, ',' without a space."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ": ")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ": ")).encode("ascii")


class _Gv:
    """Collects Google-style validation failures."""

    def __init__(self):
        self.payload = []           # (field or None, description): proto-JSON parse errors
        self.semantic = []          # "* GenerateContentRequest.x: msg\n" lines

    def unknown(self, name, at):
        d = ('Invalid JSON payload received. Unknown name "%s"%s: Cannot find field.'
             % (name, " at '%s'" % at if at else ""))
        self.payload.append((at or None, d))

    def fields(self, obj, known, at):
        """Report unknown keys of obj; return {camelName: value} of the known ones."""
        out = {}
        for k, v in obj.items():
            c = k if k in known else _camel(k)
            if c in known:
                out[c] = v
            else:
                self.unknown(k, at)
        return out

    def invalid(self, at, type_name, value):
        self.payload.append((at, "Invalid value at '%s' (%s), %s"
                             % (at, type_name, json.dumps(value, ensure_ascii=False))))


def _join(at, name):
    return "%s.%s" % (at, _snake(name)) if at else _snake(name)


class GeminiDialect(Dialect):
    """Gemini API: POST <prefix>/v1beta/models/{model}:generateContent and
    :streamGenerateContent (SSE with ?alt=sse, else a streamed JSON array)."""

    name = "gemini"
    json_ctype = "application/json; charset=UTF-8"
    presets = {
        "rate_limit": 429, "server_error": 500, "overloaded": 503, "timeout": 504,
        "invalid_request": 400, "auth": 400, "permission": 403, "not_found": 404,
    }
    by_status = {429: "rate_limit", 500: "server_error", 503: "overloaded", 504: "timeout",
                 400: "invalid_request", 403: "permission", 404: "not_found"}

    def make_id(self, n):
        return "emu-resp-%d" % n

    def matches(self, method, path):
        return GM_PATH.match(path) is not None

    @staticmethod
    def _parts(path):
        m = GM_PATH.match(path)
        return (urllib.parse.unquote(m.group(3)), m.group(2), m.group(4)) if m else \
            (None, "v1beta", "generateContent")

    def model(self, req):
        return self._parts(req.path)[0]

    def api_key(self, req):
        k = req.headers.get("x-goog-api-key", "").strip()
        if k:
            return k
        q = req.query.get("key")
        if isinstance(q, list):
            q = q[0] if q else None
        return q.strip() if isinstance(q, str) and q.strip() else None

    @staticmethod
    def _err(code, message, status=None, details=None):
        e = {"code": code, "message": message, "status": status or GM_STATUS.get(code, "UNKNOWN")}
        if details is not None:
            e["details"] = details
        return {"error": e}

    def _reply(self, code, message, status=None, details=None):
        return Reply(code, _gdumps(self._err(code, message, status, details)),
                     content_type=self.json_ctype)

    def _bad_key(self):
        return self._err(400, GM_BADKEY_MSG, "INVALID_ARGUMENT", [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": GM_BADKEY_MSG}])

    def auth_error(self, req, key):
        if key is None:
            return self._reply(403, GM_NOKEY_MSG, "PERMISSION_DENIED")
        if key == "bad-key":
            return Reply(400, _gdumps(self._bad_key()), content_type=self.json_ctype)
        return None

    # ---- validation ---------------------------------------------------------

    def validate(self, req):
        if req.body_bytes.strip() == b"":
            body = {}
        elif not req.json_ok:
            return self._reply(400, self._json_error(req))
        else:
            body = req.body
        if not isinstance(body, dict):
            return self._reply(400, 'Invalid JSON payload received. Unknown name "": Root '
                               'element must be a message.')
        v = _Gv()
        self._walk(body, v)
        if v.payload:
            viol = [({"field": f, "description": d} if f else {"description": d})
                    for f, d in v.payload]
            return self._reply(400, "\n".join(d for _, d in v.payload), "INVALID_ARGUMENT",
                               [{"@type": GM_BAD_REQUEST, "fieldViolations": viol}])
        self._semantic(body, v)
        if v.semantic:
            return self._reply(400, "".join(v.semantic))
        for c in body.get("contents") or []:
            if isinstance(c, dict) and "role" in c and c["role"] not in ("user", "model"):
                return self._reply(400, "Please use a valid role: user, model.")
        return None

    @staticmethod
    def _json_error(req):
        text = req.body_bytes.decode("utf-8", "replace")
        try:
            json.loads(text)
            return "Invalid JSON payload received. Unexpected token."
        except ValueError as e:
            lineno = getattr(e, "lineno", 1)
            col = getattr(e, "colno", 1) - 1
            lines = text.split("\n")
            line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
            lo = max(0, col - 20)
            return ("Invalid JSON payload received. Unexpected token.\n%s\n%s^"
                    % (line[lo:col + 20], " " * (col - lo)))
        except RecursionError:
            return "Invalid JSON payload received. Too many nested levels."

    def _walk(self, body, v):
        top = v.fields(body, GM_TOP, None)
        cs = top.get("contents")
        if self._is_list(cs, "contents", "Content", v):
            for i, c in enumerate(cs):
                self._walk_content(c, "contents[%d]" % i, v)
        si = top.get("systemInstruction")
        if si is not None:
            self._walk_content(si, "system_instruction", v)
        gc = top.get("generationConfig")
        if self._is_obj(gc, "generation_config", "GenerationConfig", v):
            g = v.fields(gc, GM_GENCONFIG, "generation_config")
            for k, val in g.items():
                at = _join("generation_config", k)
                if val is None:
                    continue
                if k in GM_GEN_FLOAT and not self._num_ok(val, False):
                    v.invalid(at, "TYPE_FLOAT", val)
                elif k in GM_GEN_INT and not self._num_ok(val, True):
                    v.invalid(at, "TYPE_INT32", val)
            tc = g.get("thinkingConfig")
            if self._is_obj(tc, "generation_config.thinking_config", "ThinkingConfig", v):
                v.fields(tc, GM_THINKING, "generation_config.thinking_config")
            rs = g.get("responseSchema")
            if self._is_obj(rs, "generation_config.response_schema", "Schema", v):
                self._walk_schema(rs, "generation_config.response_schema", v)
        tools = top.get("tools")
        if self._is_list(tools, "tools", "Tool", v):
            for i, t in enumerate(tools):
                at = "tools[%d]" % i
                if not self._is_obj(t, at, "Tool", v):
                    continue
                tf = v.fields(t, GM_TOOL, at)
                fds = tf.get("functionDeclarations")
                if not self._is_list(fds, at + ".function_declarations", "FunctionDeclaration", v):
                    continue
                for k, fd in enumerate(fds):
                    fat = "%s.function_declarations[%d]" % (at, k)
                    if not self._is_obj(fd, fat, "FunctionDeclaration", v):
                        continue
                    f = v.fields(fd, GM_FUNC, fat)
                    for key in ("parameters", "response"):
                        if self._is_obj(f.get(key), fat + "." + key, "Schema", v):
                            self._walk_schema(f[key], fat + "." + key, v)

    @staticmethod
    def _is_obj(val, at, type_name, v):
        """True for an object; report anything else but null (null = unset)."""
        if isinstance(val, dict):
            return True
        if val is not None:
            v.invalid(at, GM_TYPE + type_name, val)
        return False

    @staticmethod
    def _is_list(val, at, type_name, v):
        if isinstance(val, list):
            return True
        if val is not None:
            v.invalid(at, GM_TYPE + type_name, val)
        return False

    @staticmethod
    def _num_ok(val, integer):
        if isinstance(val, str):                 # proto-JSON accepts numbers as strings
            try:
                val = float(val)
            except ValueError:
                return False
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            return False
        return not integer or float(val).is_integer()

    def _walk_content(self, c, at, v):
        if not self._is_obj(c, at, "Content", v):
            return
        f = v.fields(c, GM_CONTENT, at)
        role = f.get("role")
        if role is not None and not isinstance(role, str):
            v.invalid(at + ".role", "TYPE_STRING", role)
        parts = f.get("parts")
        if not self._is_list(parts, at + ".parts", "Part", v):
            return
        for j, p in enumerate(parts):
            pat = "%s.parts[%d]" % (at, j)
            if self._is_obj(p, pat, "Part", v):
                f = v.fields(p, GM_PART, pat)
                if f.get("text") is not None and not isinstance(f["text"], str):
                    v.invalid(pat + ".text", "TYPE_STRING", f["text"])

    def _walk_schema(self, sch, at, v):
        f = {}
        for k, val in sch.items():
            c = k if k in GM_SCHEMA else _camel(k)
            if c not in GM_SCHEMA:
                v.unknown(k, at)
                continue
            f[c] = val
        t = f.get("type")
        if isinstance(t, list):
            v.payload.append((at, 'Invalid JSON payload received. Unknown name "type" at '
                              "'%s': Proto field is not repeating, cannot start list." % at))
        elif t is not None and (not isinstance(t, str) or t.upper() not in GM_SCHEMA_TYPES):
            v.invalid(at + ".type", GM_TYPE + "Type", t)
        if self._is_obj(f.get("properties"), at + ".properties", "Schema", v):
            for i, val in enumerate(f["properties"].values()):
                pat = "%s.properties[%d].value" % (at, i)
                if self._is_obj(val, pat, "Schema", v):
                    self._walk_schema(val, pat, v)
        if self._is_obj(f.get("items"), at + ".items", "Schema", v):
            self._walk_schema(f["items"], at + ".items", v)
        if self._is_list(f.get("anyOf"), at + ".any_of", "Schema", v):
            for i, val in enumerate(f["anyOf"]):
                pat = "%s.any_of[%d]" % (at, i)
                if self._is_obj(val, pat, "Schema", v):
                    self._walk_schema(val, pat, v)

    @staticmethod
    def _get(obj, name):
        """A field by its camelCase or snake_case name (None unless obj is an object)."""
        if not isinstance(obj, dict):
            return None
        if name in obj:
            return obj[name]
        return obj.get(_snake(name))

    def _semantic(self, body, v):
        pre = "* GenerateContentRequest."
        cs = self._get(body, "contents")
        if not cs:
            v.semantic.append(pre + "contents: contents is not specified\n")
        for i, c in enumerate(cs or []):
            parts = self._get(c, "parts")
            if not parts:
                v.semantic.append(pre + "contents[%d].parts: contents.parts must not be "
                                  "empty.\n" % i)
                continue
            for j, p in enumerate(parts):
                if not self._has_data(p):
                    v.semantic.append(pre + "contents[%d].parts[%d].data: required oneof field "
                                      "'data' must have one initialized field\n" % (i, j))
        si = self._get(body, "systemInstruction")
        if isinstance(si, dict):
            for j, p in enumerate(self._get(si, "parts") or []):
                if not self._has_data(p):
                    v.semantic.append(pre + "system_instruction.parts[%d].data: required oneof "
                                      "field 'data' must have one initialized field\n" % j)
        for i, t in enumerate(self._get(body, "tools") or []):
            for k, fd in enumerate(self._get(t, "functionDeclarations") or []):
                name = self._get(fd, "name") if isinstance(fd, dict) else None
                if not isinstance(name, str) or not GM_FN_NAME.match(name):
                    v.semantic.append(
                        pre + "tools[%d].function_declarations[%d].name: Invalid function "
                        "name. Must start with a letter or an underscore. Must be alphameric "
                        "(a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), "
                        "with a maximum length of 64.\n" % (i, k))

    def _has_data(self, p):
        for k in GM_PART_DATA:
            val = self._get(p, k)
            if val is not None and val != "":      # proto3: "" is the unset default
                return True
        return False

    def wants_stream(self, req):
        return self._parts(req.path)[2] == "streamGenerateContent"

    def _sse(self, req):
        alt = req.query.get("alt")
        return (alt[-1] if isinstance(alt, list) and alt else alt) == "sse"

    def stream_ctype(self, req):
        return "text/event-stream" if self._sse(req) else self.json_ctype

    # ---- success ------------------------------------------------------------

    def _prompt_words(self, body):
        if not isinstance(body, dict):
            return 0
        n = 0
        contents = list(self._get(body, "contents") or [])
        si = self._get(body, "systemInstruction")
        if isinstance(si, dict):
            contents.append(si)
        for c in contents:
            for p in (self._get(c, "parts") or []) if isinstance(c, dict) else []:
                if isinstance(p, dict):
                    n += words(p.get("text"))
        return n

    def default_answer(self, ctx, action):
        a = action or {}
        tcs = neutral_tool_calls(a.get("tool_calls"))
        if "text" in a:
            text = a["text"]
        elif a.get("kind") == "big":
            text = "x" * int(a.get("bytes", 0))
        elif tcs:
            text = None
        else:
            text = "Hello from %s!" % ctx.model
        thinking = a.get("thinking", a.get("reasoning"))
        usage = a.get("usage")
        p = self._prompt_words(ctx.req.body)
        if usage is None and a.get("block_reason"):
            usage = self._usage(p, 0, 0)
        elif usage is None:
            c = words(text)
            for t in tcs:
                c += words(t["name"]) + words(args_text(t["arguments"]))
            usage = self._usage(p, c, words(thinking))
        ans = Answer(text, thinking, tcs, a.get("finish_reason") or "STOP", usage)
        ans.with_ids = a.get("with_ids", False)
        ans.thought_signature = a.get("thought_signature")
        ans.block_reason = a.get("block_reason")
        ans.prompt_words = p
        return ans

    @staticmethod
    def _usage(p, c, t):
        """usageMetadata as proto3 JSON renders it (zero counts are left out)."""
        u = {}
        if p:
            u["promptTokenCount"] = p
        if c:
            u["candidatesTokenCount"] = c
        if p + c + t:
            u["totalTokenCount"] = p + c + t
        if p:
            u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": p}]
        if t:
            u["thoughtsTokenCount"] = t
        return u

    def _fc_part(self, ans, t):
        fc = {"name": t["name"], "args": args_obj(t["arguments"])}
        if ans.with_ids:
            fc["id"] = t["id"] or "emu-call-%s" % t["name"]
        return {"functionCall": fc}

    def _part_list(self, ans):
        """[(part, kind, weight)] in order: thoughts, text, function calls."""
        out = []
        if ans.reasoning is not None:
            out.append(({"text": ans.reasoning, "thought": True}, "thought"))
        if ans.text:
            out.append(({"text": ans.text}, "text"))
        for t in ans.tool_calls:
            out.append((self._fc_part(ans, t), "call"))
        return out

    @staticmethod
    def _sign(parts, sig):
        """Attach a thoughtSignature the way Gemini does: on the first function call, else on
        the last non-thought part."""
        if not sig:
            return
        calls = [p for p in parts if "functionCall" in p]
        plain = [p for p in parts if not p.get("thought")]
        target = calls[0] if calls else (plain[-1] if plain else None)
        if target is not None:
            target["thoughtSignature"] = sig

    def _response(self, ctx, candidates, usage, ans):
        r = {}
        if ans.block_reason:
            r["promptFeedback"] = {"blockReason": ans.block_reason}
        else:
            r["candidates"] = candidates
        if usage:
            r["usageMetadata"] = usage
        r["modelVersion"] = ctx.model
        r["responseId"] = ctx.resp_id
        return r

    def _candidate(self, parts, finish):
        c = {"content": {"parts": parts, "role": "model"} if parts else {"role": "model"}}
        if finish:
            c["finishReason"] = finish
        c["index"] = 0
        return c

    def success_body(self, ctx, ans):
        parts = [p for p, _ in self._part_list(ans)]
        self._sign(parts, ans.thought_signature)
        return _gdumps(self._response(ctx, [self._candidate(parts, ans.finish_reason)],
                                      ans.usage, ans))

    def _chunks(self, ctx, ans, action):
        """The GenerateContentResponse objects of a stream."""
        a = action or {}
        if ans.block_reason:
            return [self._response(ctx, None, ans.usage, ans)]
        n = int(a.get("piece_chars") or (4096 if a.get("kind") == "big" else 4))
        seq = []                                   # (part, kind, chars)
        if ans.reasoning is not None:
            for p in pieces(ans.reasoning, n) or [""]:
                seq.append(({"text": p, "thought": True}, "thought", len(p)))
        if ans.text:
            for p in pieces(ans.text, n):
                seq.append(({"text": p}, "text", len(p)))
        for t in ans.tool_calls:
            seq.append((self._fc_part(ans, t), "call", 1))
        if not seq:
            seq.append(({"text": ""}, "text", 0))
        self._sign([p for p, _, _ in seq], ans.thought_signature)
        final = ans.usage if isinstance(ans.usage, dict) else {}
        computed = a.get("usage") is None
        tot_t = sum(ch for _, k, ch in seq if k == "thought") or 1
        tot_c = sum(ch for _, k, ch in seq if k != "thought") or 1
        fin_t = final.get("thoughtsTokenCount", 0)
        fin_c = final.get("candidatesTokenCount", 0)
        p = final.get("promptTokenCount", 0)
        out, got_t, got_c = [], 0, 0
        for i, (part, kind, ch) in enumerate(seq):
            last = i == len(seq) - 1
            if kind == "thought":
                got_t += ch
            else:
                got_c += ch
            if last:
                u = final
            elif computed:
                t = fin_t * got_t // tot_t
                c = fin_c * got_c // tot_c
                u = self._usage(p, c, t)
            else:
                u = {k: final[k] for k in ("promptTokenCount", "promptTokensDetails")
                     if k in final}
                if p:
                    u["totalTokenCount"] = p
            out.append(self._response(ctx, [self._candidate([part], ans.finish_reason
                                                            if last else None)], u, ans))
        return out

    def stream_events(self, ctx, ans, action):
        chunks = self._chunks(ctx, ans, action)
        if self._sse(ctx.req):
            return [b"data: " + _gline(c) + b"\r\n\r\n" for c in chunks]
        ev = [(b"[" if i == 0 else b",\r\n") + _gdumps(c) for i, c in enumerate(chunks)]
        ev.append(b"]")
        return ev

    def stream_error_event(self, ctx, action):
        eb = action.get("error_body")
        if eb is None:
            _, eb = self._error_obj(ctx, action.get("error_preset") or "server_error", None)
        if isinstance(eb, str):
            data = eb.encode("utf-8", "surrogatepass")
        else:
            if not (isinstance(eb, dict) and "error" in eb):
                eb = {"error": eb}
            data = _gline(eb) if self._sse(ctx.req) else _gdumps(eb)
        if self._sse(ctx.req):
            return b"data: " + data + b"\r\n\r\n"
        first = not action.get("error_after_events")
        return (b"[" if first else b",\r\n") + data + b"]"

    # ---- errors -------------------------------------------------------------

    def error(self, ctx, preset, status):
        st, b = self._error_obj(ctx, preset, status)
        return st, _gdumps(b)

    def _error_obj(self, ctx, preset, status):
        if preset is None or preset not in self.presets:
            st = status if status is not None else ALL_PRESET_STATUS.get(preset, 500)
            preset = self.by_status.get(st)
            if preset is None:
                msg = {401: "Request had invalid authentication credentials. Expected OAuth 2 "
                            "access token, login cookie or other valid authentication "
                            "credential."}.get(st, "Internal error encountered.")
                return st, self._err(st, msg)
            status = st
        model = ctx.model if ctx else "unknown"
        version, method = ("v1beta", "generateContent") if ctx is None else \
            self._parts(ctx.req.path)[1:]
        if preset == "rate_limit":
            b = self._err(429, "You exceeded your current quota, please check your plan and "
                          "billing details. For more information on this error, head to: "
                          "https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your "
                          "current usage, head to: https://ai.dev/usage?tab=rate-limit. \n"
                          "* Quota exceeded for metric: generativelanguage.googleapis.com/"
                          "generate_content_free_tier_requests, limit: 10, model: %s\n"
                          "Please retry in 37.284651837s." % model, "RESOURCE_EXHAUSTED", [
                              {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                               "violations": [{
                                   "quotaMetric": "generativelanguage.googleapis.com/"
                                                  "generate_content_free_tier_requests",
                                   "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-"
                                              "FreeTier",
                                   "quotaDimensions": {"location": "global", "model": model},
                                   "quotaValue": "10"}]},
                              {"@type": "type.googleapis.com/google.rpc.Help",
                               "links": [{"description": "Learn more about Gemini API quotas",
                                          "url": "https://ai.google.dev/gemini-api/docs/"
                                                 "rate-limits"}]},
                              {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                               "retryDelay": "37s"}])
        elif preset == "server_error":
            b = self._err(500, "An internal error has occurred. Please retry or report in "
                          "https://developers.generativeai.google/guide/troubleshooting")
        elif preset == "overloaded":
            b = self._err(503, "The model is overloaded. Please try again later.")
        elif preset == "timeout":
            b = self._err(504, "Deadline expired before operation could complete.")
        elif preset == "invalid_request":
            b = self._err(400, "Request contains an invalid argument.")
        elif preset == "auth":
            b = self._bad_key()
        elif preset == "permission":
            b = self._err(403, "The caller does not have permission")
        else:                                                   # not_found
            b = self._err(404, "models/%s is not found for API version %s, or is not supported "
                          "for %s. Call ListModels to see the list of available models and "
                          "their supported methods." % (model, version, method))
        if status is not None:
            b["error"]["code"] = status
        return (status if status is not None else self.presets[preset]), b

    def not_found(self, method, path):
        return self._reply(404, "Method not found.", "NOT_FOUND")


DIALECTS = [OpenAIDialect(), AnthropicDialect(), GeminiDialect()]
DEFAULT_DIALECT = DIALECTS[0]
ALL_PRESETS = set()
ALL_PRESET_STATUS = {}          # preset name -> status, from the first dialect that has it
for _d in DIALECTS:
    ALL_PRESETS.update(_d.presets)
    for _k, _v in _d.presets.items():
        ALL_PRESET_STATUS.setdefault(_k, _v)


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------

class BadRequest(Exception):
    def __init__(self, status, msg):
        Exception.__init__(self, msg)
        self.status = status


class ClientGone(Exception):
    pass


class ProviderRequest:
    def __init__(self, method, path, query, headers, body_bytes):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body_bytes = body_bytes
        self.json_ok = False
        self.json_error = None
        self.body = None
        if body_bytes:
            try:
                self.body = json.loads(body_bytes)
                self.json_ok = True
            except Exception as e:      # ValueError, RecursionError, ...
                self.json_error = str(e)
        if not self.json_ok:
            self.body = body_bytes.decode("utf-8", "replace")


def _clean_header_value(v):
    return str(v).replace("\r", " ").replace("\n", " ")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llmroute-emulator/1"
    sys_version = ""

    def version_string(self):
        return self.server_version
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True

    def setup(self):
        http.server.BaseHTTPRequestHandler.setup(self)
        self.counted_epoch = -1
        self.conn_id = getattr(_conn_local, "conn_id", 0)

    # ---- logging ----------------------------------------------------------

    def log_message(self, fmt, *args):
        log("[conn %s] %s", getattr(self, "conn_id", "?"), fmt % args)

    # ---- dispatch ---------------------------------------------------------

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_OPTIONS(self):
        self._dispatch()

    def _dispatch(self):
        self._responded = False
        try:
            self._dispatch_inner()
        except (ClientGone, ConnectionError, TimeoutError, ssl.SSLError, BrokenPipeError):
            self.close_connection = True
        except BadRequest as e:
            self.close_connection = True
            if not self._responded:
                self._send_safe(Reply(e.status, {"error": {"message": str(e),
                                                           "type": "invalid_request_error",
                                                           "param": None, "code": None}}),
                                close=True)
        except Exception:
            self.close_connection = True
            if not QUIET:
                log("internal error: %s", traceback.format_exc().replace("\n", " | "))
            if not self._responded:
                self._send_safe(Reply(500, _oa_err("emulator internal error", "server_error")),
                                close=True)

    def _send_safe(self, reply, close=False):
        try:
            self._send_reply(reply, close=close)
        except Exception:
            self.close_connection = True

    def _dispatch_inner(self):
        split = urllib.parse.urlsplit(self.path)
        path = split.path or "/"
        qs = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        query = {k: (v[0] if len(v) == 1 else v) for k, v in qs.items()}
        body = self._read_body()
        if path == "/_emu" or path.startswith("/_emu/"):
            return self._control(path, body)
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        req = ProviderRequest(self.command, path, query, headers, body)
        owner = None
        for d in DIALECTS:
            if d.matches(self.command, path):
                owner = d
                break
        dialect = owner if self.command == "POST" else None
        model = dialect.model(req) if dialect else None
        entry = {"method": self.command, "path": path, "query": query, "headers": headers,
                 "body": req.body, "model": model, "conn": self.conn_id,
                 "dialect": owner.name if owner else None}
        entry = self.server.state.record(entry, self)
        if dialect is None:
            self.server.state.annotate(entry, "action", "not_found")
            return self._send_reply((owner or DEFAULT_DIALECT).not_found(self.command, path))
        self._provider(dialect, req, model, entry)

    # ---- request body -----------------------------------------------------

    def _read_exact(self, n):
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise ClientGone()
        return data

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise BadRequest(501, "unsupported Transfer-Encoding")
            return self._read_chunked()
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl.strip())
            if n < 0:
                raise ValueError
        except ValueError:
            raise BadRequest(400, "invalid Content-Length")
        if n > MAX_BODY:
            raise BadRequest(413, "request body too large")
        return self._read_exact(n) if n else b""

    def _read_chunked(self):
        out = bytearray()
        while True:
            line = self.rfile.readline(1026)
            if not line:
                raise ClientGone()
            if not line.endswith(b"\n"):
                raise BadRequest(400, "bad chunk size line")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size < 0:
                    raise ValueError
            except ValueError:
                raise BadRequest(400, "bad chunk size")
            if size == 0:
                break
            if len(out) + size > MAX_BODY:
                raise BadRequest(413, "request body too large")
            out += self._read_exact(size)
            if self._read_exact(2) != b"\r\n":
                raise BadRequest(400, "bad chunk terminator")
        for _ in range(100):            # trailers
            line = self.rfile.readline(65537)
            if not line:
                raise ClientGone()
            if line in (b"\r\n", b"\n"):
                return bytes(out)
        raise BadRequest(400, "too many trailers")

    # ---- responses --------------------------------------------------------

    def _begin(self, status, content_type, headers, length=None, chunked=False, close=False):
        self.send_response(status)
        names = set()
        for k, v in (headers.items() if isinstance(headers, dict) else headers or []):
            lk = k.lower()
            if lk in ("content-length", "transfer-encoding"):
                continue
            names.add(lk)
            self.send_header(_clean_header_value(k).replace(":", ""), _clean_header_value(v))
        if "content-type" not in names and content_type:
            self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self._responded = True

    def _send_reply(self, reply, close=False, prefix=b""):
        body = prefix + reply.body
        self._begin(reply.status, reply.content_type, reply.headers, length=len(body),
                    close=close)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _abort(self, reset=False):
        """Close the connection now, without finishing any response."""
        self.close_connection = True
        self._responded = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.rfile.close()
                self.connection.close()     # RST
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass

    # ---- control endpoints ------------------------------------------------

    def _json(self, status, obj):
        self._send_reply(Reply(status, obj))

    def _control(self, path, body):
        st = self.server.state
        m = self.command
        if path == "/_emu/health" and m == "GET":
            return self._json(200, {"ok": True})
        if path == "/_emu/requests" and m == "GET":
            return self._send_reply(Reply(200, st.snapshot_log()))
        if path == "/_emu/stats" and m == "GET":
            return self._send_reply(Reply(200, st.snapshot_stats()))
        if path == "/_emu/reset" and m == "POST":
            st.reset()
            return self._json(200, {"ok": True})
        if path == "/_emu/script" and m == "POST":
            try:
                doc = json.loads(body)
            except Exception:
                return self._json(400, {"ok": False, "error": "body is not JSON"})
            try:
                scripts = parse_scripts(doc, ALL_PRESETS)
            except ValueError as e:
                return self._json(400, {"ok": False, "error": str(e)})
            st.install(scripts)
            return self._json(200, {"ok": True, "models": [s.model for s in scripts]})
        known = ("/_emu/health", "/_emu/requests", "/_emu/stats", "/_emu/reset", "/_emu/script")
        if path in known:
            return self._json(405, {"ok": False, "error": "method not allowed"})
        return self._json(404, {"ok": False, "error": "unknown control endpoint %s" % path})

    # ---- provider requests ------------------------------------------------

    def _provider(self, dialect, req, model, entry):
        st = self.server.state
        key = dialect.api_key(req)
        if st.require_key(model):
            rej = dialect.auth_error(req, key)
            if rej is not None:
                st.annotate(entry, "action", "rejected")
                return self._send_reply(rej)
        rej = dialect.validate(req)
        if rej is not None:
            st.annotate(entry, "action", "rejected")
            return self._send_reply(rej)

        action = st.take_action(model)
        a = action or {}
        kind = a.get("kind", "ok")
        st.annotate(entry, "action", kind)
        ctx = Ctx(req, model, key, a.get("id") or dialect.make_id(st.next_id()),
                  int(time.time()))
        headers = dialect.extra_headers(ctx) + self._header_list(a.get("headers"))

        if kind != "ok" or a.get("drop_after_events") is not None \
                or a.get("error_after_events") is not None:
            log("[conn %s] model %r: action %s", self.conn_id, model,
                json.dumps(a, separators=(",", ":"))[:200])
        delay = a.get("delay_ms")
        if delay:
            time.sleep(delay / 1000.0)

        if kind in ("ok", "big"):
            ans = dialect.default_answer(ctx, a)
            if dialect.wants_stream(req):
                return self._stream(dialect, ctx, ans, a)
            return self._send_reply(Reply(200, dialect.success_body(ctx, ans), headers,
                                          dialect.json_ctype),
                                    prefix=a.get("body_prefix", "").encode("utf-8"))
        if kind == "error":
            status, body = dialect.error(ctx, a.get("preset"), a.get("status"))
            if "body" in a:
                body = a["body"]
                if isinstance(body, str):
                    body = body.encode("utf-8", "surrogatepass")
            return self._send_reply(Reply(status, body, headers, dialect.json_ctype))
        if kind == "close":
            return self._abort(a.get("reset", False))
        if kind == "truncate":
            full = dialect.success_body(ctx, dialect.default_answer(ctx, a))
            self._begin(200, dialect.json_ctype, headers, length=len(full))
            self.wfile.write(full[:len(full) // 2])
            return self._abort(a.get("reset", False))
        if kind == "garbage":
            body = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
                    b"\xff\xfe\xc3\x28\x80\xa0\xe2\x28\xa1")
            return self._send_reply(Reply(200, body, a.get("headers")))
        if kind == "raw":
            body = a.get("body", "")
            if isinstance(body, str):
                body = body.encode("utf-8", "surrogatepass")
            hdrs = a.get("headers")
            if a.get("encoding") == "gzip":  # as a compressing gateway sends it
                body = gzip.compress(body if isinstance(body, bytes) else dumps(body))
                hdrs = self._header_list(hdrs) + [("Content-Encoding", "gzip")]
            return self._send_reply(Reply(a.get("status") or 200, body, hdrs))
        if kind == "stall":
            self._stall(a.get("ms"))
            return self._abort(a.get("reset", False))
        raise RuntimeError("unhandled action kind %r" % kind)

    @staticmethod
    def _header_list(h):
        if not h:
            return []
        return list(h.items()) if isinstance(h, dict) else [tuple(x) for x in h]

    def _stall(self, ms):
        """Wait ms (or until the peer goes away, at most STALL_MAX_S)."""
        limit = STALL_MAX_S if ms is None else ms / 1000.0
        deadline = time.monotonic() + limit
        sock = self.connection
        try:
            sock.settimeout(0.05)
        except OSError:
            return
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                r, _, _ = select.select([sock], [], [], min(0.05, left))
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                data = sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
                continue
            except (OSError, ValueError):
                return
            if not data:
                return      # peer closed

    # ---- streams ----------------------------------------------------------

    def _stream(self, dialect, ctx, ans, a):
        events = dialect.stream_events(ctx, ans, a)
        err_n = a.get("error_after_events")
        drop_n = a.get("drop_after_events")
        if err_n is not None:
            events = events[:int(err_n)] + [dialect.stream_error_event(ctx, a)]
        if drop_n is not None:
            events = events[:int(drop_n)]
        prefix = a.get("body_prefix", "").encode("utf-8")
        mode = a.get("chunking", "event")
        ev_delay = (a.get("event_delay_ms") or 0) / 1000.0
        dropping = drop_n is not None
        chunked = self.request_version != "HTTP/1.0"

        # writes: list of (bytes, number of events complete after this write)
        writes = []
        if mode == "event":
            if prefix:
                writes.append((prefix, 0))
            for i, e in enumerate(events):
                writes.append((e, i + 1))
        else:
            data = prefix + b"".join(events)
            ends = []
            pos = len(prefix)
            for e in events:
                pos += len(e)
                ends.append(pos)
            if mode == "byte":
                cuts = list(range(1, len(data) + 1))
            elif mode == "random":
                rng = random.Random(a.get("seed", 1))
                cuts, pos = [], 0
                while pos < len(data):
                    pos = min(len(data), pos + rng.randint(1, 24))
                    cuts.append(pos)
            else:                                  # block
                cuts = [len(data)] if data else []
            start, k = 0, 0
            for c in cuts:
                while k < len(ends) and ends[k] <= c:
                    k += 1
                writes.append((data[start:c], k))
                start = c

        extra = dialect.extra_headers(ctx) + self._header_list(a.get("headers"))
        self._begin(200, dialect.stream_ctype(ctx.req), [("Cache-Control", "no-cache")] + extra,
                    chunked=chunked, close=not chunked)

        def frame(b):
            return b"%x\r\n%s\r\n" % (len(b), b) if chunked else b

        terminator = b"0\r\n\r\n" if (chunked and not dropping) else b""
        if mode == "block":
            self.wfile.write(b"".join(frame(w) for w, _ in writes) + terminator)
        else:
            done = 0
            for i, (w, k) in enumerate(writes):
                self.wfile.write(frame(w))
                if ev_delay and k > done and i + 1 < len(writes):
                    time.sleep(ev_delay)
                done = k
            if terminator:
                self.wfile.write(terminator)
        if dropping:
            return self._abort(a.get("reset", False))


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------

class EmulatorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, ssl_context, state):
        host = addr[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.ssl_context = ssl_context
        self.state = state
        http.server.ThreadingHTTPServer.__init__(self, addr, Handler)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def process_request_thread(self, request, client_address):
        conn = request
        try:
            cid = self.state.connection_accepted()
            if self.ssl_context is not None:
                request.settimeout(HANDSHAKE_TIMEOUT_S)
                try:
                    conn = self.ssl_context.wrap_socket(request, server_side=True)
                except (OSError, ValueError) as e:
                    log("TLS handshake with %s failed: %s", client_address[0], e)
                    try:
                        request.close()
                    except OSError:
                        pass
                    return
            _conn_local.conn_id = cid
            self.finish_request(conn, client_address)
        except Exception:
            self.handle_error(conn, client_address)
        finally:
            self.shutdown_request(conn)

    def handle_error(self, request, client_address):
        if QUIET:
            return
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
            log("connection from %s: %s", client_address[0], exc)
        else:
            log("error on connection from %s: %s", client_address[0],
                traceback.format_exc().replace("\n", " | "))


def write_port_file(path, port):
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.tmp.%d" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv=None):
    global QUIET
    ap = argparse.ArgumentParser(description="Local LLM provider emulator (see README.md).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--script", help="JSON file: a list of script objects loaded at start")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--log-limit", type=int, default=0, metavar="N",
                    help="keep only the last N request-log entries (0 = all; for long benchmarks)")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="exit when the parent process dies (test runner crashed)")
    args = ap.parse_args(argv)
    QUIET = args.quiet
    if QUIET:
        threading.excepthook = lambda _args: None

    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")

    state = State(args.log_limit)
    if args.script:
        try:
            with open(args.script, "rb") as f:
                state.install(parse_scripts(json.load(f), ALL_PRESETS))
        except (OSError, ValueError) as e:
            if not QUIET:
                sys.stderr.write("emulator: --script %s: %s\n" % (args.script, e))
            return 2

    ctx = None
    if args.tls_cert:
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            ctx.set_alpn_protocols(["http/1.1"])
        except (OSError, ssl.SSLError) as e:
            if not QUIET:
                sys.stderr.write("emulator: TLS setup failed: %s\n" % e)
            return 2

    try:
        server = EmulatorServer((args.host, args.port), ctx, state)
    except OSError as e:
        if not QUIET:
            sys.stderr.write("emulator: cannot bind %s:%d: %s\n" % (args.host, args.port, e))
        return 2
    port = server.server_address[1]

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="serve", daemon=True)
    t.start()
    if args.port_file:
        write_port_file(args.port_file, port)
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    log("listening on %s:%d (%s)", args.host, port, "https" if ctx else "http")

    parent = os.getppid()
    while not stop.wait(0.25):
        if args.exit_with_parent and os.getppid() != parent:
            log("parent went away")
            break
    log("shutting down")
    server.shutdown()
    server.server_close()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    # Handler threads are daemons that may be mid-stall or mid-delay; leave
    # without waiting for them (and without interpreter-shutdown races).
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
