#!/usr/bin/env python3
"""Loopback fake model for the agtmux end-to-end suite (issue 9). Python 3 stdlib only.

Serves four streaming APIs on 127.0.0.1 so the real Claude Code, Codex, Gemini CLI and OpenCode
TUIs run offline:
  POST .../v1/messages   Anthropic Messages API (SSE when "stream": true, else one JSON body)
  POST .../responses     OpenAI Responses API (SSE)
  POST ...:streamGenerateContent / :generateContent / :countTokens   Gemini API (issue 22)
  POST .../chat/completions   OpenAI Chat Completions (SSE), for OpenCode's openai-compatible
                         provider (issue 22)
Anything else answers 200 with an empty JSON object, so start-up probes do not fail.

What a turn does is chosen by words in the newest user text (the "directive"):
  slowN      text streamed word by word over N seconds
  tool       Claude: a Bash tool_use. Codex: exec_command (runs in the sandbox, no approval)
  toolesc    Codex: exec_command asking for escalation, so approval_policy=on-request asks
             Claude: same as tool (Claude asks for any Bash command)
  askq       Claude: AskUserQuestion. Codex: request_user_input (Plan mode only)
  fail       HTTP 400 (never retried)
  fail500    HTTP 500 on every attempt (retried by the clients, then an error)
  flakyN     the first N attempts of this prompt fail (Claude: HTTP 500, Codex: the stream is
             dropped before completion), then a slow answer: the client shows its retry UI
  midfail    the stream starts, then an error event (Codex: response.failed)
  hang       the stream starts, then nothing for HANG seconds
  Issue 23 (answers shaped as the real services send them; docs/usage-states.md):
  limit      the account's usage limit. Claude: HTTP 429 rate_limit_error with the unified
             rate-limit headers (status rejected, reset, representative claim seven_day, the
             5h/7d utilization/reset pairs). Codex: HTTP 429 with the `usage_limit_reached`
             body and the x-codex-primary/secondary-* headers. The reset is the next whole
             minute at least 60 s away (both TUIs print it to the minute).
  overloadN  Claude: the first N attempts get HTTP 529 overloaded_error (retry-after: 1), then
             a slow answer: the TUI shows "Retrying in 1s · attempt k/n"
  ratelimitN Claude: the same with a plain HTTP 429 rate_limit_error (no unified headers)
  bgshell    a shell command that keeps running after the turn (Claude: Bash with
             run_in_background; Codex: exec_command that yields after 0.5 s), 12 s long
  A compaction request (Claude's "create a detailed summary of", Codex's "CONTEXT CHECKPOINT
  COMPACTION") gets a summary after COMPACT_DELAY seconds, so the compacting screen lasts.
  (other)    a short answer after a short delay
After a tool result the reply is "Done: the command ran." after AFTER_TOOL seconds.
Requests that carry no shell tool (titles, topic detection) are side requests: fast, plain.

Usage: fake_model.py --port-file FILE [--log FILE]; port 0 picks a free port, written to FILE.
"""
import argparse
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHORT_DELAY = 1.0
AFTER_TOOL = 3.0
HANG = 300.0
COMPACT_DELAY = 3.0
BG_SECONDS = 12


def limit_reset():
    """Epoch seconds of the next whole minute at least 60 s away."""
    return (int(time.time()) // 60 + 2) * 60
QUESTION = "Which database should the new service use?"

_attempts = {}
_attempts_lock = threading.Lock()
_log_lock = threading.Lock()
LOG_PATH = None


def log(**kw):
    if not LOG_PATH:
        return
    kw["ts"] = round(time.time(), 3)
    with _log_lock, open(LOG_PATH, "a") as f:
        f.write(json.dumps(kw) + "\n")


def clean(text):
    text = re.sub(r"<system-reminder>.*?</system-reminder>", " ", text, flags=re.S)
    text = re.sub(r"\[Request interrupted by user[^\]]*\]", " ", text)
    return text.strip()


def directive(text):
    """(kind, seconds-or-count) from the prompt words."""
    words = re.findall(r"[a-z]+\d*", text.lower())
    for w in words:
        m = re.fullmatch(r"(slow|flaky|overload|ratelimit)(\d*)", w)
        if m:
            n = int(m.group(2)) if m.group(2) else (8 if m.group(1) == "slow" else 2)
            return m.group(1), n
    for kind in ("toolesc", "tool", "askq", "fail500", "fail", "midfail", "hang", "limit", "bgshell"):
        if kind in words:
            return kind, 0
    return "short", 0


def bump(key):
    """How many times this prompt was tried before (for flakyN); keyed per API and conversation,
    because several agents may send the same prompt."""
    with _attempts_lock:
        n = _attempts.get(key, 0)
        _attempts[key] = n + 1
        return n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    # -- plumbing -------------------------------------------------------------------------
    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_e2e_" + uuid.uuid4().hex[:10])
        self.end_headers()
        self.wfile.write(data)

    def open_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", "req_e2e_" + uuid.uuid4().hex[:10])
        self.end_headers()
        self.close_connection = True

    def event(self, name, data):
        self.wfile.write(b"event: " + name.encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n")
        self.wfile.flush()

    def do_GET(self):
        self.send_json(200, {"data": [], "models": [], "object": "list", "has_more": False})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        req = self.body()
        path = self.path.split("?", 1)[0]
        try:
            if path.endswith("/messages"):
                self.anthropic(req)
            elif path.endswith("/count_tokens"):
                self.send_json(200, {"input_tokens": 10})
            elif path.endswith("/responses"):
                self.openai(req)
            elif ":countTokens" in path:
                self.send_json(200, {"totalTokens": 10})
            elif ":streamGenerateContent" in path or ":generateContent" in path:
                self.gemini(req, ":streamGenerateContent" in path)
            elif path.endswith("/chat/completions"):
                self.chat(req)
            else:
                self.send_json(200, {})
        except (BrokenPipeError, ConnectionResetError):
            log(api="?", note="client went away")

    # -- Anthropic Messages ---------------------------------------------------------------
    def anthropic(self, req):
        tools = [t.get("name") for t in req.get("tools") or []]
        texts, tool_result = [], False
        users = [m for m in req.get("messages") or [] if m.get("role") == "user"]
        content = users[-1].get("content") if users else ""
        for block in [content] if isinstance(content, str) else content or []:
            if isinstance(block, str):
                texts.append(block)
            elif block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                tool_result = True
        # Claude joins the user turns after an error or a deny: the newest text block counts.
        texts = [t for t in (clean(t) for t in texts) if t]
        prompt = texts[-1] if texts else ""
        if any("create a detailed summary of" in t for t in texts):
            kind, arg = "compact", 0
        elif prompt.startswith("<task-notification>"):
            # Claude's own turn when a background task ends (its words, e.g. "tool-use-id",
            # are no directive)
            kind, arg = "short", 0
        elif "Bash" not in tools:
            kind, arg = "side", 0
        elif tool_result and not prompt:
            kind, arg = "after_tool", 0
        else:
            kind, arg = directive(prompt)
        log(api="anthropic", kind=kind, prompt=prompt[-120:], stream=req.get("stream"))
        conv = str((req.get("metadata") or {}).get("user_id") or "")  # carries Claude's session id
        if kind == "flaky" and bump("anthropic:" + conv + ":" + prompt) < arg:
            return self.send_json(500, {"type": "error", "error": {"type": "api_error", "message": "e2e flaky 500"}})
        if kind == "fail500":
            return self.send_json(500, {"type": "error", "error": {"type": "api_error", "message": "e2e scripted 500"}})
        if kind in ("overload", "ratelimit") and bump("anthropic:" + conv + ":" + prompt) < arg:
            if kind == "overload":
                return self.send_json(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                                      {"retry-after": 1, "x-should-retry": "true"})
            return self.send_json(429, {"type": "error", "error": {"type": "rate_limit_error",
                                                                   "message": "e2e transient rate limit"}},
                                  {"retry-after": 1, "x-should-retry": "true"})
        if kind == "limit":
            reset = limit_reset()
            return self.send_json(429, {"type": "error", "error": {"type": "rate_limit_error",
                                                                   "message": "This request would exceed your account's rate limit. Please try again later."}},
                                  {"anthropic-ratelimit-unified-status": "rejected",
                                   "anthropic-ratelimit-unified-reset": reset,
                                   "anthropic-ratelimit-unified-representative-claim": "seven_day",
                                   "anthropic-ratelimit-unified-5h-utilization": "0.4",
                                   "anthropic-ratelimit-unified-5h-reset": reset,
                                   "anthropic-ratelimit-unified-7d-utilization": "1.0",
                                   "anthropic-ratelimit-unified-7d-reset": reset,
                                   "anthropic-ratelimit-unified-fallback": "unavailable",
                                   "anthropic-ratelimit-unified-overage-status": "rejected",
                                   "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
                                   "x-should-retry": "false"})
        if kind == "fail":
            return self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                   "message": "e2e scripted 400"}})
        blocks, pace = self.claude_blocks(kind, arg, prompt, req)
        stop = "tool_use" if any(b[0] == "tool_use" for b in blocks) else "end_turn"
        msg = {"id": "msg_e2e_" + uuid.uuid4().hex[:12], "type": "message", "role": "assistant",
               "model": req.get("model", "claude-e2e"), "content": [], "stop_reason": None,
               "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": 1}}
        if not req.get("stream"):
            time.sleep(min(pace[0], 1.0))
            msg["content"] = [{"type": "text", "text": v} if k == "text" else
                              {"type": "tool_use", "id": "toolu_e2e_" + uuid.uuid4().hex[:10], "name": v[0], "input": v[1]}
                              for k, v in blocks]
            msg["stop_reason"] = stop
            return self.send_json(200, msg)
        self.open_stream()
        self.event("message_start", {"type": "message_start", "message": msg})
        if kind == "hang":
            time.sleep(HANG)
            return
        wait, per_word = pace
        deadline = time.time() + wait
        while time.time() < deadline:
            self.event("ping", {"type": "ping"})
            time.sleep(min(0.4, max(0.0, deadline - time.time())))
        if kind == "midfail":
            self.event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "e2e mid-stream"}})
            return
        for i, (k, v) in enumerate(blocks):
            if k == "text":
                self.event("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}})
                for j, word in enumerate(v.split(" ")):
                    self.event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "text_delta", "text": word if j == 0 else " " + word}})
                    time.sleep(per_word)
            else:
                self.event("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                    "type": "tool_use", "id": "toolu_e2e_" + uuid.uuid4().hex[:10], "name": v[0], "input": {}}})
                self.event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "input_json_delta", "partial_json": json.dumps(v[1])}})
            self.event("content_block_stop", {"type": "content_block_stop", "index": i})
        self.event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": 12}})
        self.event("message_stop", {"type": "message_stop"})

    @staticmethod
    def claude_blocks(kind, arg, prompt, req):
        """([(kind, value)], (initial wait, seconds per word))."""
        if kind == "compact":
            return [("text", "<summary>e2e summary of the conversation so far.</summary>")], (COMPACT_DELAY, 0.01)
        if kind == "bgshell":
            return [("text", "Starting it in the background."),
                    ("tool_use", ("Bash", {"command": "sleep %d" % BG_SECONDS, "description": "Sleep in the background",
                                           "run_in_background": True}))], (SHORT_DELAY, 0.01)
        if kind == "side":
            system = json.dumps(req.get("system", "")).lower()
            reply = '{"isNewTopic": false, "title": null}' if "topic" in system else (
                '{"title": "E2E session"}' if "title" in system else "ok")
            return [("text", reply)], (0.0, 0.0)
        if kind in ("tool", "toolesc"):
            return [("text", "Running a command."),
                    ("tool_use", ("Bash", {"command": "touch ./e2e_tool_ran", "description": "Create a marker file"}))], (SHORT_DELAY, 0.01)
        if kind == "askq":
            q = {"question": QUESTION, "header": "Database", "multiSelect": False,
                 "options": [{"label": "PostgreSQL", "description": "Relational"},
                             {"label": "SQLite", "description": "Embedded"}]}
            return [("text", "One question first."), ("tool_use", ("AskUserQuestion", {"questions": [q]}))], (SHORT_DELAY, 0.01)
        if kind == "after_tool":
            return [("text", "Done: the command ran.")], (AFTER_TOOL, 0.01)
        if kind in ("slow", "flaky", "overload", "ratelimit"):
            n = arg if kind == "slow" else 4
            text = "Slow answer " + " ".join("w%d" % i for i in range(20)) + " finished."
            return [("text", text)], (0.3, max(n - 0.3, 0.1) / 22)
        return [("text", "Short answer to: " + prompt[:60])], (SHORT_DELAY, 0.01)

    # -- OpenAI Responses ------------------------------------------------------------------
    def openai(self, req):
        items = req.get("input") or []
        tools = [t.get("name") or t.get("type") for t in req.get("tools") or []]
        prompt = ""
        for it in reversed(items):
            if it.get("role") == "user":
                c = it.get("content")
                prompt = c if isinstance(c, str) else " ".join(
                    x.get("text", "") for x in c or [] if isinstance(x, dict))
                break
        prompt = clean(prompt)
        last = items[-1].get("type") if items else None
        if "CONTEXT CHECKPOINT COMPACTION" in prompt:
            kind, arg = "compact", 0
        elif not any(n in tools for n in ("exec_command", "shell_command", "shell", "local_shell")):
            kind, arg = "side", 0
        elif last in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            kind, arg = "after_tool", 0
        else:
            kind, arg = directive(prompt)
        log(api="responses", kind=kind, prompt=prompt[-120:])
        if kind == "fail":
            return self.send_json(400, {"error": {"type": "invalid_request_error", "code": "invalid_request",
                                                  "message": "e2e scripted 400"}})
        if kind == "fail500":
            return self.send_json(500, {"error": {"type": "server_error", "message": "e2e scripted 500"}})
        if kind == "limit":
            reset = limit_reset()
            left = reset - int(time.time())
            return self.send_json(429, {"error": {"type": "usage_limit_reached",
                                                  "message": "The usage limit has been reached",
                                                  "plan_type": "plus", "resets_at": reset, "resets_in_seconds": left}},
                                  {"x-codex-primary-used-percent": "100.0", "x-codex-primary-window-minutes": "300",
                                   "x-codex-primary-reset-at": reset, "x-codex-primary-reset-after-seconds": left,
                                   "x-codex-secondary-used-percent": "40.0", "x-codex-secondary-window-minutes": "10080",
                                   "x-codex-secondary-reset-at": reset + 86400,
                                   "x-codex-secondary-reset-after-seconds": left + 86400})
        seq = [0]

        def ev(name, **data):
            data.update(type=name, sequence_number=seq[0])
            seq[0] += 1
            self.event(name, data)

        resp = {"id": "resp_e2e_" + uuid.uuid4().hex[:12], "object": "response", "created_at": int(time.time()),
                "model": req.get("model", "e2e"), "status": "in_progress", "output": []}
        self.open_stream()
        ev("response.created", response=resp)
        ev("response.in_progress", response=resp)
        if kind == "hang":
            time.sleep(HANG)
            return
        # per conversation: several Codex TUIs send the same prompt at the same time
        conv = str(req.get("prompt_cache_key") or self.headers.get("session_id") or self.headers.get("conversation_id") or "")
        if kind == "flaky" and bump("openai:" + conv + ":" + prompt) < arg:
            time.sleep(0.5)
            return  # connection closes without response.completed: Codex retries the stream
        if kind == "midfail":
            time.sleep(SHORT_DELAY)
            ev("response.failed", response=dict(resp, status="failed",
                                                error={"code": "server_error", "message": "e2e mid-stream failure"}))
            return
        if kind in ("tool", "toolesc", "askq", "bgshell"):
            time.sleep(SHORT_DELAY)
            if kind == "bgshell":
                name, args = "exec_command", {"cmd": "sleep %d" % BG_SECONDS, "yield_time_ms": 500}
            elif kind == "askq":
                name, args = "request_user_input", {"questions": [{
                    "id": "db", "header": "Database", "question": QUESTION,
                    "options": [{"label": "PostgreSQL (Recommended)", "description": "Relational"},
                                {"label": "SQLite", "description": "Embedded"}]}]}
            elif "exec_command" in tools:
                name, args = "exec_command", {"cmd": "touch ./e2e_tool_ran"}
            elif "shell_command" in tools:
                name, args = "shell_command", {"command": "touch ./e2e_tool_ran"}
            else:
                name, args = "shell", {"command": ["bash", "-lc", "touch ./e2e_tool_ran"]}
            if kind == "toolesc":
                args.update(sandbox_permissions="require_escalated", justification="e2e needs approval")
            item = {"type": "function_call", "id": "fc_e2e_" + uuid.uuid4().hex[:10],
                    "call_id": "call_e2e_" + uuid.uuid4().hex[:10], "name": name,
                    "arguments": json.dumps(args), "status": "completed"}
            ev("response.output_item.added", output_index=0, item=dict(item, arguments="", status="in_progress"))
            ev("response.function_call_arguments.done", output_index=0, item_id=item["id"], arguments=item["arguments"])
            ev("response.output_item.done", output_index=0, item=item)
            output = [item]
        else:
            if kind == "side":
                text, wait, per_word = "E2E task", 0.0, 0.0
            elif kind == "compact":
                text, wait, per_word = "e2e summary of the conversation so far.", COMPACT_DELAY, 0.01
            elif kind == "after_tool":
                text, wait, per_word = "Done: the command ran.", AFTER_TOOL, 0.01
            elif kind in ("slow", "flaky"):
                n = arg if kind == "slow" else 4
                text = "Slow answer " + " ".join("w%d" % i for i in range(20)) + " finished."
                wait, per_word = 0.3, max(n - 0.3, 0.1) / 22
            else:
                text, wait, per_word = "Short answer to: " + prompt[:60], SHORT_DELAY, 0.01
            time.sleep(wait)
            mid = "msg_e2e_" + uuid.uuid4().hex[:10]
            ev("response.output_item.added", output_index=0,
               item={"type": "message", "id": mid, "role": "assistant", "status": "in_progress", "content": []})
            ev("response.content_part.added", output_index=0, item_id=mid, content_index=0,
               part={"type": "output_text", "text": "", "annotations": []})
            for j, word in enumerate(text.split(" ")):
                ev("response.output_text.delta", output_index=0, item_id=mid, content_index=0,
                   delta=word if j == 0 else " " + word)
                time.sleep(per_word)
            ev("response.output_text.done", output_index=0, item_id=mid, content_index=0, text=text)
            item = {"type": "message", "id": mid, "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}
            ev("response.output_item.done", output_index=0, item=item)
            output = [item]
        ev("response.completed", response=dict(resp, status="completed", output=output, usage={
            "input_tokens": 50, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 12,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 62}))

    # -- Gemini API (Gemini CLI 0.61) --------------------------------------------------------
    def gemini(self, req, stream):
        tools = bool(req.get("tools"))
        prompt, tool_result = "", False
        for c in reversed(req.get("contents") or []):
            if c.get("role") != "user":
                continue
            for part in reversed(c.get("parts") or []):
                if "functionResponse" in part:
                    tool_result = True
                    break
                if "text" in part:
                    prompt = clean(part["text"])
                    break
            break
        kind, n = directive(prompt) if tools and not tool_result else ("short", 0)
        log(api="gemini", stream=stream, tools=tools, prompt=prompt[:80], kind=kind, tool_result=tool_result)
        if kind in ("fail", "fail500"):
            code = 400 if kind == "fail" else 500
            return self.send_json(code, {"error": {"code": code, "message": "e2e fake error",
                                                   "status": "INVALID_ARGUMENT" if code == 400 else "INTERNAL"}})
        if not tools:
            # side requests (routing, next speaker): a JSON answer the CLI can parse
            parts = [{"text": json.dumps({"reasoning": "e2e", "next_speaker": "user", "model_choice": "flash"})}]
        elif tool_result:
            time.sleep(AFTER_TOOL)
            parts = [{"text": "Done: the command ran."}]
        elif kind in ("tool", "toolesc"):
            parts = [{"functionCall": {"name": "run_shell_command",
                                       "args": {"command": "ls /", "description": "list the root"}}}]
        elif kind == "askq":
            parts = [{"functionCall": {"name": "ask_user", "args": {"questions": [
                {"question": "Which database?", "header": "Database", "type": "choice",
                 "options": [{"label": "sqlite", "description": "file"},
                             {"label": "postgres", "description": "server"}]}]}}}]
        else:
            time.sleep(n if kind == "slow" else 0.3)
            parts = [{"text": "The answer is finished."}]
        resp = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}}
        if not stream:
            return self.send_json(200, resp)
        self.open_stream()
        self.wfile.write(b"data: " + json.dumps(resp).encode() + b"\r\n\r\n")
        self.wfile.flush()

    # -- OpenAI Chat Completions (OpenCode 1.18's openai-compatible provider) -----------------
    def chat(self, req):
        msgs = req.get("messages") or []
        last = msgs[-1] if msgs else {}
        role = last.get("role")
        content = last.get("content")
        if isinstance(content, list):
            content = " ".join(b.get("text", "") for b in content if isinstance(b, dict))
        prompt = clean(content or "") if role == "user" else ""
        tools = bool(req.get("tools"))
        kind, n = directive(prompt) if tools and role == "user" else ("short", 0)
        log(api="chat", tools=tools, role=role, prompt=prompt[:80], kind=kind)
        if kind in ("fail", "fail500"):
            code = 400 if kind == "fail" else 500
            return self.send_json(code, {"error": {"message": "e2e fake error", "type": "invalid_request_error"}})

        def chunk(delta, fin=None):
            return {"id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": req.get("model", "m1"), "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]}
        if not req.get("stream"):
            return self.send_json(200, {"id": "chatcmpl-e2e", "object": "chat.completion", "created": int(time.time()),
                                        "model": req.get("model", "m1"), "choices": [{"index": 0, "message": {
                                            "role": "assistant", "content": "E2E title"}, "finish_reason": "stop"}]})
        self.open_stream()

        def send(c):
            self.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")
            self.wfile.flush()
        if kind in ("tool", "toolesc", "askq"):
            name, args = ("bash", {"command": "ls /", "description": "List the root"}) if kind != "askq" else (
                "question", {"questions": [{"question": "Which database?", "header": "Database", "options": [
                    {"label": "sqlite", "description": "file"}, {"label": "postgres", "description": "server"}]}]})
            send(chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_" + uuid.uuid4().hex[:8],
                                                             "type": "function", "function": {
                                                                 "name": name, "arguments": json.dumps(args)}}]}))
            send(chunk({}, "tool_calls"))
        else:
            if role == "tool":
                time.sleep(AFTER_TOOL)
                text = "Done: the command ran."
            elif not tools:
                text = "E2E title"
            else:
                time.sleep(n if kind == "slow" else 0.3)
                text = "The answer is finished."
            send(chunk({"role": "assistant", "content": text}))
            send(chunk({}, "stop"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def main():
    global LOG_PATH
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    LOG_PATH = a.log
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.replace(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
