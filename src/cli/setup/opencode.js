// agtmux-opencode-plugin v1: written by `agtmux setup opencode`; removed by
// `agtmux setup opencode --uninstall`. Edits are overwritten by the next setup.
//
// Forwards OpenCode's status, permission, question, idle and error events to
// `agtmux hook opencode`. Fire-and-forget: the program is spawned directly (argv array, no
// shell, detached, unref'd), gets one small JSON object on stdin, and OpenCode never waits
// for it, so a slow disk or a missing agtmux can never block OpenCode. Outside tmux nothing
// is sent.
import { spawn } from "node:child_process";

const AGTMUX = __AGTMUX_BIN__;
const FORWARD = new Set([
  "session.status",
  "session.idle",
  "session.error",
  "permission.asked",
  "permission.replied",
  "question.asked",
  "question.replied",
  "question.rejected",
]);

// One hook at a time, in event order: concurrent spawns would reach the spool in any order.
// The queue is bounded and a stuck hook holds it for at most 2 s.
const queue = [];
let busy = false;

function pump() {
  if (busy) return;
  const msg = queue.shift();
  if (!msg) return;
  busy = true;
  let done = false;
  const next = () => {
    if (done) return;
    done = true;
    busy = false;
    pump();
  };
  setTimeout(next, 2000).unref();
  try {
    const child = spawn(AGTMUX, ["hook", "opencode"], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
    child.on("error", next);
    child.on("exit", next);
    child.stdin.on("error", () => {});
    child.stdin.end(JSON.stringify(msg));
    child.unref();
  } catch (_) {
    next();
  }
}

function send(msg) {
  if (!process.env.TMUX || !process.env.TMUX_PANE) return;
  if (queue.length >= 256) queue.shift();
  queue.push(msg);
  pump();
}

export const AgtmuxPlugin = async () => {
  // Sessions whose last turn ended in an error: the idle that follows keeps the error.
  const errored = new Set();
  return {
    event: async ({ event }) => {
      try {
        if (!event || !FORWARD.has(event.type)) return;
        const p = event.properties || {};
        const sid = p.sessionID;
        if (typeof sid !== "string") return;
        const msg = { event: event.type, session_id: sid };
        let idle = event.type === "session.idle";
        if (event.type === "session.status") {
          msg.status = p.status && p.status.type;
          if (msg.status === "busy" || msg.status === "retry") errored.delete(sid);
          idle = msg.status === "idle";
        } else if (event.type === "permission.asked") {
          msg.permission = p.permission;
        } else if (event.type === "permission.replied") {
          msg.reply = p.reply;
        } else if (event.type === "session.error") {
          msg.error = p.error && p.error.name;
          if (msg.error !== "MessageAbortedError") errored.add(sid);
        }
        if (idle && errored.has(sid)) msg.after_error = true;
        send(msg);
      } catch (_) {}
    },
  };
};
