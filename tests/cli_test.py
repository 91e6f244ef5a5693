#!/usr/bin/env python3
"""The llmroute CLI, run as a user would, against the provider emulator.

Checks plain, --json and --stream output, fallback traces, --request files with -m
overrides, stdin prompts, failure documents, exit codes 0/1/2, and that a
key never appears in anything the CLI prints."""
import json
import os
import subprocess
import sys
import urllib.request

ROOT = os.environ.get("LLMR_SRCDIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "llmroute"))
SECRET = "sk-cli-secret-5a4b3c2d"
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def control(port, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def run(port, args, stdin=None, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({
        "OPENAI_API_KEY": SECRET,
        "OPENROUTER_API_KEY": SECRET,
        "LLMR_OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "LLMR_OPENROUTER_BASE_URL": f"http://127.0.0.1:{port}/api/v1",
        "ANTHROPIC_API_KEY": SECRET,
        "LLMR_ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}",
        # only the fallback variable: the Google SDKs read GEMINI_API_KEY,
        # then GOOGLE_API_KEY
        "GOOGLE_API_KEY": SECRET,
        "LLMR_GOOGLE_BASE_URL": f"http://127.0.0.1:{port}",
        "NO_PROXY": "127.0.0.1,localhost",
    })
    env.update(env_extra or {})
    p = subprocess.run([CLI] + args, input=stdin, capture_output=True, text=True,
                       env=env, timeout=60)
    check("secret never printed " + " ".join(args[:3]),
          SECRET not in p.stdout and SECRET not in p.stderr)
    return p


def ledger_checks(port):
    """--ledger/--app on calls, then llmroute ledger report|verify."""
    import csv
    import io
    import shutil
    import tempfile
    import time
    import xml.etree.ElementTree as ET
    tmp = tempfile.mkdtemp(prefix="llmr-cli-ledger-")
    try:
        led = os.path.join(tmp, "spend.jsonl")
        control(port, "/_emu/script", {"model": "gpt-4o-mini", "default": {
            "kind": "ok", "usage": {"prompt_tokens": 1000, "completion_tokens": 500,
                                    "total_tokens": 1500,
                                    "prompt_tokens_details": {"cached_tokens": 400}}}})
        for _ in range(2):
            p = run(port, ["--trace", "--ledger", led, "--app", "demo", "--user", "u1",
                           "-m", "openai/gpt-down,openai/gpt-4o-mini", "hi"])
            check("ledger call", p.returncode == 0, p.stderr)
            # 600 x $0.15 + 400 x $0.075 + 500 x $0.60 per Mtok
            check("trace cost", "cost: $0.000420000" in p.stderr, p.stderr)
            check("trace request id", "request id: " in p.stderr, p.stderr)
        p = run(port, ["--stream", "--ledger", led, "--app", "other",
                       "-m", "openai/gpt-4o", "story"])
        check("ledger stream call", p.returncode == 0, p.stderr)
        lines = open(led).read().splitlines()
        recs = [json.loads(l) for l in lines]
        check("ledger records", len(recs) == 5, len(recs))
        check("ledger mode 0600", (os.stat(led).st_mode & 0o777) == 0o600)
        check("ledger ids shared per call", recs[0]["id"] == recs[1]["id"]
              and recs[1]["id"] != recs[2]["id"])
        check("ledger fields", recs[1]["app"] == "demo" and recs[1]["user"] == "u1"
              and recs[1]["cost_nanousd"] == 420000 and recs[0]["status"] == "LLMR_E_OVERLOADED"
              and recs[4]["stream"] is True, recs[1])
        check("ledger no secret, no prompt", SECRET not in open(led).read()
              and "story" not in open(led).read())

        p = run(port, ["ledger", "verify", led])
        check("verify ok", p.returncode == 0 and "5 records, chain intact" in p.stdout,
              p.stdout + p.stderr)
        p = run(port, ["ledger", "verify", "--json", led])
        check("verify json", p.returncode == 0 and json.loads(p.stdout)["ok"] is True)

        # the table: aligned, a TOTAL row, most expensive first
        p = run(port, ["ledger", "report", led])
        out = p.stdout.splitlines()
        check("report exit", p.returncode == 0, p.stderr)
        check("report header", out and out[0].split()[:4] == ["model", "attempts", "calls", "errors"],
              out[:1])
        check("report aligned", len(set(len(l) for l in out)) == 1, out)
        check("report total", out[-1].startswith("TOTAL") and out[-1].split()[1] == "5"
              and out[-1].split()[-1] == "0.000872500", out[-1:])
        check("report order", out[1].startswith("openai/gpt-4o-mini")
              and out[2].startswith("openai/gpt-4o "), out)
        # CSV by app sums to the total
        p = run(port, ["ledger", "report", "--ledger", led, "--by", "app", "--csv"])
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        check("csv rows", [r["app"] for r in rows] == ["demo", "other", "TOTAL"], rows)
        check("csv exact sums", sum(int(r["cost_nanousd"]) for r in rows[:-1])
              == int(rows[-1]["cost_nanousd"]) == 872500, rows)
        # JSON, by day, time filters
        p = run(port, ["ledger", "report", led, "--by", "day", "--json"])
        doc = json.loads(p.stdout)
        today = time.strftime("%Y-%m-%d", time.gmtime())
        check("json by day", doc["total"]["records"] == 5
              and [g["key"] for g in doc["groups"]] == [today], doc["groups"])
        p = run(port, ["ledger", "report", led, "--since", "2999-01-01", "--json"])
        check("since in the future", json.loads(p.stdout)["total"]["records"] == 0, p.stdout)
        p = run(port, ["ledger", "report", led, "--since", "-1d", "--app", "other", "--json"])
        check("since -1d, app filter", json.loads(p.stdout)["total"]["records"] == 1, p.stdout)
        # the HTML page: one file, an SVG chart, nothing fetched
        page = os.path.join(tmp, "spend.html")
        p = run(port, ["ledger", "report", led, "--html", page])
        check("html exit", p.returncode == 0 and os.path.exists(page), p.stderr)
        html = open(page).read() if os.path.exists(page) else ""
        low = html.lower()
        check("html self-contained", "<svg" in low and "<script" not in low
              and "src=" not in low and "href=" not in low and "@import" not in low
              and "url(" not in low)
        svg = html[html.find("<svg"):html.find("</svg>") + 6]
        try:
            root = ET.fromstring(svg)
            bars = [e for e in root.iter() if e.tag.endswith("rect")]
            check("html chart bars", len(bars) >= 2, len(bars))
        except ET.ParseError as e:
            check("html svg well-formed", False, repr(e))
        check("html models", "openai/gpt-4o-mini" in html and "0.000872500" in html)

        # a record edited by hand: verify says where
        bad = os.path.join(tmp, "edited.jsonl")
        with open(bad, "w") as f:
            f.write("\n".join(lines[:1] + [lines[1].replace('"prompt":1000', '"prompt":10')]
                              + lines[2:]) + "\n")
        p = run(port, ["ledger", "verify", bad])
        check("verify edited", p.returncode == 1 and "line 2" in p.stdout
              and "1 problem" in p.stdout, p.stdout)
        # not a ledger: a clear error, the file untouched, nothing sent
        junk = os.path.join(tmp, "junk.bin")
        with open(junk, "wb") as f:
            f.write(bytes(range(256)) * 4)
        before = open(junk, "rb").read()
        p = run(port, ["ledger", "report", junk])
        check("report junk", p.returncode == 1 and "not a ledger record" in p.stderr, p.stderr)
        sent = control(port, "/_emu/stats")["requests"]
        p = run(port, ["--ledger", junk, "-m", "openai/gpt-4o-mini", "hi"])
        check("call with junk ledger", p.returncode == 1 and "ledger" in p.stderr, p.stderr)
        check("junk ledger sent nothing", control(port, "/_emu/stats")["requests"] == sent)
        check("junk untouched", open(junk, "rb").read() == before)
        # usage errors
        for args, why in ((["ledger"], "no command"), (["ledger", "frob"], "bad command"),
                          (["ledger", "report"], "no file"),
                          (["ledger", "report", led, "--by", "colour"], "bad --by"),
                          (["ledger", "report", led, "--since", "yesterday"], "bad time"),
                          (["ledger", "report", led, "--json", "--csv"], "json and csv"),
                          (["ledger", "verify"], "verify no file")):
            p = run(port, args)
            check("ledger usage " + why, p.returncode == 2, (p.returncode, p.stderr))
        p = run(port, ["ledger", "report", os.path.join(tmp, "missing.jsonl")])
        check("report missing file", p.returncode == 1 and "No such file" in p.stderr, p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    emu = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/mock/emulator.py"),
                            "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(emu.stdout.readline().split()[1])
        control(port, "/_emu/script", {"model": "gpt-down", "default":
                                       {"kind": "error", "preset": "overloaded",
                                        "headers": {"Retry-After": "4"}}})

        # plain: the answer only, exit 0
        p = run(port, ["-m", "openai/gpt-4o-mini", "Say hi"])
        check("plain exit", p.returncode == 0, p.stderr)
        check("plain text", p.stdout == "Hello from gpt-4o-mini!\n", repr(p.stdout))

        # --json with a fallback chain: OpenAI shape + llmroute trace
        p = run(port, ["--json", "-m", "openai/gpt-down,openrouter/meta-llama/llama-3.1-8b",
                       "--system", "Be terse.", "--max-tokens", "12",
                       "--temperature", "0.3", "hello"])
        check("json exit", p.returncode == 0, p.stderr)
        doc = json.loads(p.stdout)
        check("json object", doc.get("object") == "chat.completion")
        check("json model is the slug that answered",
              doc.get("model") == "openrouter/meta-llama/llama-3.1-8b", doc.get("model"))
        check("json content", doc["choices"][0]["message"]["content"]
              == "Hello from meta-llama/llama-3.1-8b!")
        check("json finish", doc["choices"][0]["finish_reason"] == "stop")
        check("json usage", isinstance(doc["usage"]["prompt_tokens"], int))
        lr = doc["llmroute"]
        check("json provider", lr["provider"] == "openrouter")
        check("json attempts", [a["model"] for a in lr["attempts"]]
              == ["openai/gpt-down", "openrouter/meta-llama/llama-3.1-8b"])
        check("json first attempt 503", lr["attempts"][0]["http_status"] == 503
              and lr["attempts"][0]["error"])
        check("json second attempt ok", lr["attempts"][1]["error"] is None)
        sent = control(port, "/_emu/requests")[-1]["body"]
        check("system, max_tokens, temperature sent",
              sent["messages"][0] == {"role": "system", "content": "Be terse."}
              and sent["max_tokens"] == 12 and sent["temperature"] == 0.3, sent)

        # failure: error document, exit 1
        p = run(port, ["--json", "-m", "openai/gpt-down", "hello"])
        check("fail exit", p.returncode == 1, p.returncode)
        doc = json.loads(p.stdout)
        e = doc.get("error", {})
        check("fail error fields", e.get("code") == "LLMR_E_OVERLOADED"
              and e.get("type") == "server_error" and e.get("http_status") == 503
              and e.get("retryable") is True and e.get("retry_after_s") == 4, e)
        check("fail trace", doc["llmroute"]["attempts"][0]["http_status"] == 503)
        p = run(port, ["-m", "openai/gpt-down", "hello"])
        check("fail plain", p.returncode == 1 and p.stdout == ""
              and "LLMR_E_OVERLOADED" in p.stderr, p.stderr)

        # a refused connection: null http_status
        p = run(port, ["--json", "-m", "openai/x", "hi"],
                env_extra={"LLMR_OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
        doc = json.loads(p.stdout)
        check("refused", p.returncode == 1 and doc["error"]["code"] == "LLMR_E_TRANSPORT"
              and doc["error"]["http_status"] is None and doc["error"]["type"] is None, doc)

        # --request file with tools and tool results; -m overrides "model"
        req = {"model": "openai/ignored", "messages": [
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "-3C"}],
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "parameters": {"type": "object"}}}],
            "response_format": {"type": "json_object"}}
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"llmr-cli-{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump(req, f)
        p = run(port, ["--json", "--request", path, "-m", "openai/gpt-4o"])
        os.unlink(path)
        check("request exit", p.returncode == 0, p.stderr)
        sent = control(port, "/_emu/requests")[-1]
        check("request model overridden", sent["body"]["model"] == "gpt-4o")
        check("request passes tools and tool results",
              sent["body"]["messages"][1]["tool_calls"][0]["id"] == "call_1"
              and sent["body"]["messages"][2]["tool_call_id"] == "call_1"
              and sent["body"]["tools"][0]["function"]["name"] == "get_weather"
              and sent["body"]["response_format"] == {"type": "json_object"})
        # --request from stdin, models from the document
        p = run(port, ["--request", "-"], stdin=json.dumps(
            {"models": ["openai/gpt-down", "openai/gpt-4o"],
             "messages": [{"role": "user", "content": "x"}]}))
        check("request stdin", p.returncode == 0 and p.stdout == "Hello from gpt-4o!\n",
              p.stdout + p.stderr)
        # prompt from stdin
        p = run(port, ["-m", "openai/gpt-4o", "-"], stdin="from stdin\n")
        sent = control(port, "/_emu/requests")[-1]["body"]
        check("prompt stdin", p.returncode == 0
              and sent["messages"][-1]["content"] == "from stdin\n", sent)

        # --stream: the text as it arrives, then a newline
        control(port, "/_emu/script", {"model": "gpt-slow", "default": {
            "kind": "ok", "text": "streamed words here", "piece_chars": 3,
            "event_delay_ms": 20, "chunking": "byte"}})
        p = run(port, ["--stream", "-m", "openai/gpt-slow", "hi"])
        check("stream exit", p.returncode == 0, p.stderr)
        check("stream text", p.stdout == "streamed words here\n", repr(p.stdout))
        sent = control(port, "/_emu/requests")[-1]["body"]
        check("stream request", sent.get("stream") is True
              and sent.get("stream_options") == {"include_usage": True}, sent)
        # --stream with a fallback and --trace
        p = run(port, ["--stream", "--trace", "-m", "openai/gpt-down,openai/gpt-slow", "hi"])
        check("stream fallback", p.returncode == 0 and p.stdout == "streamed words here\n"
              and "attempt 1" in p.stderr and "LLMR_E_OVERLOADED" in p.stderr
              and "attempt 2" in p.stderr, p.stdout + p.stderr)
        # --stream --json: chunk lines, then the chat.completion
        p = run(port, ["--stream", "--json", "--trace", "-m", "openai/gpt-down,openai/gpt-slow", "hi"])
        check("stream json exit", p.returncode == 0, p.stderr)
        lines = p.stdout.splitlines()
        try:
            docs = [json.loads(l) for l in lines]
        except ValueError as e:
            docs = []
            check("stream json lines parse", False, repr(e))
        if docs:
            chunks, final = docs[:-1], docs[-1]
            check("stream json chunks", len(chunks) >= 4 and all(
                c.get("object") == "chat.completion.chunk" and c.get("model") == "openai/gpt-slow"
                for c in chunks), chunks)
            text = "".join(c["choices"][0]["delta"].get("content", "")
                           for c in chunks if c["choices"])
            check("stream json text", text == "streamed words here", text)
            check("stream json role first",
                  chunks[0]["choices"][0]["delta"].get("role") == "assistant")
            check("stream json finish chunk",
                  chunks[-2]["choices"][0]["finish_reason"] == "stop")
            check("stream json usage chunk", chunks[-1]["choices"] == []
                  and chunks[-1]["usage"]["completion_tokens"] > 0, chunks[-1])
            check("stream json final", final.get("object") == "chat.completion"
                  and final["choices"][0]["message"]["content"] == "streamed words here"
                  and [a["model"] for a in final["llmroute"]["attempts"]]
                  == ["openai/gpt-down", "openai/gpt-slow"], final)
        check("stream json trace", "attempt 2" in p.stderr, p.stderr)
        # --stream that fails: error on stderr, exit 1; --json: the error document
        p = run(port, ["--stream", "-m", "openai/gpt-down", "hi"])
        check("stream fail", p.returncode == 1 and p.stdout == ""
              and "LLMR_E_OVERLOADED" in p.stderr, p.stdout + p.stderr)
        p = run(port, ["--stream", "--json", "-m", "openai/gpt-down", "hi"])
        check("stream json fail", p.returncode == 1
              and json.loads(p.stdout.splitlines()[-1])["error"]["code"] == "LLMR_E_OVERLOADED",
              p.stdout)
        # a drop after content: the partial text, a newline, the error
        control(port, "/_emu/script", {"model": "gpt-drop", "default": {
            "kind": "ok", "text": "abcdefghijkl", "drop_after_events": 2}})
        p = run(port, ["--stream", "-m", "openai/gpt-drop", "hi"])
        check("stream drop", p.returncode == 1 and p.stdout == "abcd\n"
              and "LLMR_E_TRANSPORT" in p.stderr, p.stdout + p.stderr)

        # the same JSON shape from Anthropic and Gemini as from OpenAI
        shapes = {}
        for slug in ("openai/gpt-4o", "anthropic/claude-3.5-haiku",
                     "google/gemini-2.5-flash", "gemini/gemini-2.0-flash"):
            p = run(port, ["--json", "-m", slug, "hi"])
            check("provider json exit " + slug, p.returncode == 0, p.stderr)
            doc = json.loads(p.stdout)
            shapes[slug] = (sorted(doc), sorted(doc["choices"][0]),
                            sorted(doc["choices"][0]["message"]), sorted(doc["usage"]),
                            sorted(doc["llmroute"]))
            check("provider json model " + slug, doc["model"] == slug, doc["model"])
            check("provider json text " + slug,
                  doc["choices"][0]["message"]["content"].startswith("Hello from"),
                  doc["choices"][0]["message"])
        first = shapes["openai/gpt-4o"]
        check("same JSON shape for every provider",
              all(v == first for v in shapes.values()), shapes)
        reqs = control(port, "/_emu/requests")
        ant = [r for r in reqs if r.get("dialect") == "anthropic"][-1]
        gem = [r for r in reqs if r.get("dialect") == "gemini"][-1]
        check("anthropic auth headers", ant["headers"].get("x-api-key") == SECRET
              and ant["headers"].get("anthropic-version") == "2023-06-01"
              and ant["body"]["model"] == "claude-3-5-haiku-20241022", ant["headers"])
        check("gemini key header, not in the URL",
              gem["headers"].get("x-goog-api-key") == SECRET
              and SECRET not in gem["path"] and "key=" not in json.dumps(gem["query"]), gem)
        p = run(port, ["--json", "-m", "google/gemini-2.5-flash", "hi"],
                env_extra={"GOOGLE_API_KEY": "", "GEMINI_API_KEY": ""})
        check("no Google key: LLMR_E_NO_KEY", p.returncode == 1
              and json.loads(p.stdout)["error"]["code"] == "LLMR_E_NO_KEY", p.stdout)

        # usage errors: exit 2, nothing sent
        before = control(port, "/_emu/stats")["requests"]
        for args, why in ((["hello"], "no model"),
                          (["-m", "openai/x"], "no prompt"),
                          (["-m", "openai/x", "--max-tokens", "zero", "hi"], "bad number"),
                          (["-m", "openai/x", "--temperature", "9", "hi"], "bad temperature"),
                          (["--bogus"], "unknown option"),
                          (["--request", "/nonexistent/file.json"], "missing file")):
            p = run(port, args)
            check("usage " + why, p.returncode == 2, (p.returncode, p.stderr))
        p = run(port, ["--request", "-"], stdin='{"model":"openai/x","messages":[{"role":"bot"}]}')
        check("invalid request names the field", p.returncode == 2
              and "messages[0].role" in p.stderr, p.stderr)
        check("usage errors sent nothing", control(port, "/_emu/stats")["requests"] == before)
        p = run(port, ["--help"])
        check("help", p.returncode == 0 and "usage:" in p.stdout)

        ledger_checks(port)
    finally:
        emu.terminate()
        emu.wait(10)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
