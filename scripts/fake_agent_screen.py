#!/usr/bin/env python3
"""Draws a Claude Code / Codex CLI-like screen at the real pane width, then waits.

Used by scripts/gen-screens.sh to make corpus entries at sizes the recorded fixtures lack
(80 and 200 columns, short panes). The layouts copy what Claude Code 2.1.x and codex-cli 0.169
draw (see fixtures/screens/claude, codex); the text is new. Long lines are hard-wrapped at the
pane width the way Ink/ratatui wrap them, and the pane title is set with OSC 2.
Usage: fake_agent_screen.py <provider> <state>
"""
import os, shutil, sys, textwrap, time

prov, state = sys.argv[1], sys.argv[2]
cols, rows = shutil.get_terminal_size((80, 24))
out = []

def wrap(text, first="", rest="  "):
    w = textwrap.wrap(text, width=cols - 1, initial_indent=first, subsequent_indent=rest) or [first]
    out.extend(w)

def rule():
    out.append("\x1b[38;5;244m" + "─" * cols + "\x1b[39m")

def claude_box(footer):
    out.append("")
    rule(); out.append("❯\u00a0"); rule()
    wrap(footer, "  ", "  ")

def claude_turn(prompt, answer):
    out.append(""); wrap(prompt, "\x1b[48;5;237m❯ ", "  "); out.append("")
    wrap(answer, "● ", "  ")

title = None
if prov == "claude":
    out += [" ▐▛███▜▌   Claude Code v2.1.197", "▝▜█████▛▘  Sonnet 4.6 · API Usage Billing", "  ▘▘ ▝▝    /srv/app"]
    claude_turn("Summarise what the retry helper in src/net/retry.rs does and whether it backs off.",
                "It retries idempotent requests up to five times with exponential backoff and jitter; "
                "non-idempotent requests are never retried, which matches the doc comment.")
    out += ["", "✻ Baked for 6s"]
    idle_footer = "? for shortcuts · ← for agents" + (" " * max(1, cols - 60)) + "● high · /effort"
    if state == "idle":
        title = "✳ Retry helper review"; claude_box(idle_footer)
    elif state == "idle_prose":
        claude_turn("What do the dialogs say?",
                    "The permission dialog asks \"Do you want to proceed?\" and lists ❯ 1. Yes / 2. No; "
                    "the footer reads esc to interrupt while a turn runs and Esc to cancel in dialogs.")
        out += ["", "✻ Churned for 2s"]
        title = "✳ Retry helper review"; claude_box("⏵⏵ accept edits on (shift+tab to cycle)")
    elif state == "running":
        out += ["", "\x1b[48;5;237m❯ now add a test for the jitter bound\x1b[0m", ""]
        out += ["✶ Percolating… (12s · ↑ 1.2k tokens · thought for 3s)", "  ⎿  Tip: Use /memory to view and manage Claude memory"]
        title = "⠂ Retry helper review"; claude_box("esc to interrupt · ← for agents")
    elif state == "retry":
        out += ["", "❯ now add a test for the jitter bound", ""]
        out += ["✻ 529 Overloaded · Retrying in 7s · attempt 3/10"]
        title = "⠐ Retry helper review"; claude_box("esc to interrupt")
    elif state == "error":
        claude_turn("now add a test for the jitter bound",
                    "API Error: 529 {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}} "
                    "· check status.anthropic.com")
        out += ["", "✻ Worked for 41s"]
        title = "✳ Retry helper review"; claude_box(idle_footer)
    elif state == "approval":
        out += ["", "❯ run the flaky test 20 times", "", "● I'll loop the test to measure flakiness.", "",
                "● Bash(for i in $(seq 1 20); do cargo test -q net::retry::tests::jitter_bound -- --exact || echo FAIL $i; done)",
                "  ⎿  Waiting…", ""]
        out.append("\x1b[38;5;153m" + "─" * cols + "\x1b[39m")
        out += [" Bash command", ""]
        wrap("for i in $(seq 1 20); do cargo test -q net::retry::tests::jitter_bound -- --exact || echo FAIL $i; done", "   ", "   ")
        out += ["   Loop the jitter test 20 times", "", " Do you want to proceed?", " ❯ 1. Yes"]
        wrap("2. Yes, and don't ask again for cargo test commands in /srv/app", "   ", "   ")
        out += ["   3. No", ""]
        wrap("Esc to cancel · Tab to amend · ctrl+e to explain", " ", " ")
        title = "✳ Retry helper review"
    elif state == "question":
        out += ["", "❯ plan the cache layer, ask me first", "", "● Two choices matter here."]
        rule()
        out += [" ☐ Eviction", "", "Which eviction policy should the cache use?", "",
                "❯ 1. LRU", "     Least recently used", "  2. LFU", "     Least frequently used", "  3. Type something."]
        rule()
        out += ["  4. Chat about this", ""]
        wrap("Enter to select · ↑/↓ to navigate · Esc to cancel", "", "")
        title = "✳ Cache plan"
elif prov == "codex":
    out += ["╭──────────────────────────────────────╮", "│ >_ OpenAI Codex (v0.169.0)           │", "│                                      │",
            "│ model:     gpt-5.5 medium   /model   │", "│ directory: /srv/app                  │", "╰──────────────────────────────────────╯", ""]
    out += ["", "› Find where the config loader reads environment overrides.", ""]
    wrap("The loader reads APP_* variables in src/config/env.rs after the file layers, so the environment wins over every file.", "• ", "  ")
    out += ["", "  Worked for 9s • 10:12", ""]
    def composer(footer="← for agents · ? for shortcuts"):
        out.append("")
        out.append("› Ask Codex to do anything")
        out.append("")
        wrap("gpt-5.5 medium · /srv/app", "  ", "  ")
        wrap(footer + " " * max(1, cols - 70) + "87% context left", "  ", "  ")
    if state == "idle":
        title = "app"; composer()
    elif state == "streaming":
        out += ["› Now list every variable it reads, with defaults.", ""]
        wrap("• It reads APP_PORT (default 8080), APP_LOG (default info), APP_DB_URL", "", "  ")
        title = "⠙ app"; composer()
    elif state == "working":
        out += ["› Now list every variable it reads, with defaults.", "", "", "• Exploring config sources (14s • esc to interrupt)"]
        title = "⠹ app"; composer()
    elif state == "error":
        out += ["› Now list every variable it reads, with defaults.", "", ""]
        wrap("■ unexpected status 401 Unauthorized: Missing bearer or basic authentication in header", "", "  ")
        title = "app"; composer()
    elif state == "interrupted":
        out += ["› Now list every variable it reads, with defaults.", "", "• It reads APP_PORT", ""]
        out += ["■ Conversation interrupted - tell the model what to do differently. Something went wrong? Hit `/feedback` to report the issue."]
        title = "app"; composer()
    elif state == "approval":
        out += ["› Run the config tests.", "", ""]
        wrap("  Would you like to run the following command?", "", "  ")
        out += ["", "  Reason: run the config test suite outside the sandbox", ""]
        wrap("  $ cargo test -p app-config --features env-overrides -- --test-threads=1 config::env", "", "    ")
        out += ["", "", "› 1. Yes, proceed (y)"]
        wrap("  2. Yes, and don't ask again for commands that start with `cargo test -p app-config` (p)", "", "     ")
        out += ["  3. No, and tell Codex what to do differently (esc)", "", "  Press enter to confirm or esc to cancel"]
        title = "[ ! ] Action Required | app"
    elif state == "question":
        out += ["› Plan the migration; ask me about the backend first.", "", "", "", "  Question 1/1 (1 unanswered)",
                "  Which backend should the migration target?", "", "  › 1. Postgres (Recommended)  Managed, strong consistency",
                "    2. SQLite                   Embedded", "    3. None of the above        Optionally, add details in notes (tab)", ""]
        wrap("  tab to add notes | enter to submit answer | esc to interrupt", "", "  ")
        title = "[ . ] Action Required | app"

lines = out[-rows:]
if prov == "codex":  # Codex draws its viewport down to the last row
    lines = [""] * (rows - len(lines)) + lines
sys.stdout.write("\x1b[H\x1b[2J")
if title:
    sys.stdout.write("\x1b]2;" + title + "\x1b\\")
sys.stdout.write("\n".join(lines))
sys.stdout.flush()
time.sleep(600)
