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
                       success / error / stream rendering.  OpenAIDialect is
                       the only one so far; Anthropic and Gemini plug into
                       DIALECTS the same way.
  * Handler          - HTTP plumbing, control endpoints, fault injection.
  * EmulatorServer   - threaded server, TLS wrap per connection.
  * main()           - command line, signals.
"""

import argparse
import collections
import http.server
import json
import os
import random
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
    if "reasoning" in a and a["reasoning"] is not None and not isinstance(a["reasoning"], str):
        raise ValueError("reasoning must be a string or null")
    if "body_prefix" in a and not isinstance(a["body_prefix"], str):
        raise ValueError("body_prefix must be a string")
    if "chunking" in a and a["chunking"] not in CHUNKINGS:
        raise ValueError("chunking must be one of %s" % ", ".join(CHUNKINGS))
    tc = a.get("tool_calls")
    if tc is not None:
        if not isinstance(tc, list) or not all(isinstance(t, dict) for t in tc):
            raise ValueError("tool_calls must be a list of objects")
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
    to bytes.  To add one (Anthropic /v1/messages, Gemini
    /v1beta/models/{m}:generateContent), subclass this, fill in every
    method, and append an instance to DIALECTS."""

    name = "base"
    presets = {}            # preset name -> default HTTP status

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
        reasoning = a.get("reasoning")
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


DIALECTS = [OpenAIDialect()]
DEFAULT_DIALECT = DIALECTS[0]
ALL_PRESETS = set()
for _d in DIALECTS:
    ALL_PRESETS.update(_d.presets)


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
        self.body = None
        if body_bytes:
            try:
                self.body = json.loads(body_bytes)
                self.json_ok = True
            except Exception:       # ValueError, RecursionError, ...
                pass
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
        dialect = None
        for d in DIALECTS:
            if self.command == "POST" and d.matches(self.command, path):
                dialect = d
                break
        model = dialect.model(req) if dialect else None
        entry = {"method": self.command, "path": path, "query": query, "headers": headers,
                 "body": req.body, "model": model, "conn": self.conn_id}
        entry = self.server.state.record(entry, self)
        if dialect is None:
            self.server.state.annotate(entry, "action", "not_found")
            return self._send_reply(DEFAULT_DIALECT.not_found(self.command, path))
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
        ctx = Ctx(req, model, key, a.get("id") or "chatcmpl-emu-%d" % st.next_id(),
                  int(time.time()))

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
            return self._send_reply(Reply(200, dialect.success_body(ctx, ans), a.get("headers")),
                                    prefix=a.get("body_prefix", "").encode("utf-8"))
        if kind == "error":
            status, body = dialect.error(ctx, a.get("preset"), a.get("status"))
            if "body" in a:
                body = a["body"]
                if isinstance(body, str):
                    body = body.encode("utf-8", "surrogatepass")
            return self._send_reply(Reply(status, body, a.get("headers")))
        if kind == "close":
            return self._abort(a.get("reset", False))
        if kind == "truncate":
            full = dialect.success_body(ctx, dialect.default_answer(ctx, a))
            self._begin(200, "application/json", a.get("headers"), length=len(full))
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
            return self._send_reply(Reply(a.get("status") or 200, body, a.get("headers")))
        if kind == "stall":
            self._stall(a.get("ms"))
            return self._abort(a.get("reset", False))
        raise RuntimeError("unhandled action kind %r" % kind)

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

        extra = a.get("headers") or []
        if isinstance(extra, dict):
            extra = list(extra.items())
        self._begin(200, "text/event-stream", [("Cache-Control", "no-cache")] + list(extra),
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
