#!/usr/bin/env bash
# Generates corpus entries under fixtures/screens/{gen-agents,gen-decoys} on a PRIVATE tmux
# server (-L agtmux-gen-$$, -f /dev/null), killed by name at the end.
#  - gen-agents: scripts/fake_agent_screen.py draws Claude/Codex-like layouts at the real pane
#    size (80x24, 200x50, 80x15); the labels give the pane_current_command the real agent reports
#    (claude / node), because the drawing process itself is python3.
#  - gen-decoys: real programs (bash, vim, less, top, python3, node REPL, tail -f) showing agent
#    UI text; the labels give what tmux reported.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SOCK="agtmux-gen-$$"
T="tmux -L $SOCK -f /dev/null"
WORK=$(mktemp -d)
trap '$T kill-server 2>/dev/null || true; rm -rf "$WORK"' EXIT
GA=fixtures/screens/gen-agents; GD=fixtures/screens/gen-decoys
mkdir -p "$GA" "$GD"
printf 'file\tcols\trows\tpane_title\tpane_current_command\tpresence\tprovider\tactivity\tnote\n' > "$GA/labels.tsv"
printf 'file\tcols\trows\tpane_title\tpane_current_command\tpresence\tprovider\tactivity\tnote\n' > "$GD/labels.tsv"
$T new-session -d -s gen -x 120 -y 40 "sleep 3600"

capture() { # dir name cols rows presence provider activity command-override note
  local dir=$1 name=$2 cols=$3 rows=$4 pres=$5 prov=$6 act=$7 cmdo=$8 note=$9
  $T capture-pane -p -J -t gen:w > "$dir/$name.txt"
  $T capture-pane -p -J -e -t gen:w > "$dir/$name.ansi.txt"
  local title cmd
  title=$($T display -p -t gen:w '#{pane_title}')
  cmd=$($T display -p -t gen:w '#{pane_current_command}')
  [ -n "$cmdo" ] && note="$note (drawn by $cmd; real agent reports $cmdo)" && cmd=$cmdo
  printf '%s.txt\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$cols" "$rows" "$title" "$cmd" "$pres" "$prov" "$act" "$note" >> "$dir/labels.tsv"
  $T kill-window -t gen:w
}

window() { # cols rows command...
  local cols=$1 rows=$2; shift 2
  $T new-window -d -n w -t gen "$@"
  $T resize-window -t gen:w -x "$cols" -y "$rows"
}

for size in 80x24 200x50 80x15; do
  cols=${size%x*}; rows=${size#*x}
  for st in idle:idle idle_prose:idle running:running retry:running error:error approval:waiting_approval question:waiting_input; do
    state=${st%%:*}; act=${st#*:}
    window "$cols" "$rows" python3 "$ROOT/scripts/fake_agent_screen.py" claude "$state"; sleep 0.6
    capture "$GA" "claude_${state}_${size}" "$cols" "$rows" managed claude "$act" claude "fake-agent layout, state $state"
  done
  for st in idle:idle streaming:running working:running error:error interrupted:idle approval:waiting_approval question:waiting_input; do
    state=${st%%:*}; act=${st#*:}
    window "$cols" "$rows" python3 "$ROOT/scripts/fake_agent_screen.py" codex "$state"; sleep 0.6
    capture "$GA" "codex_${state}_${size}" "$cols" "$rows" managed codex "$act" node "fake-agent layout, state $state"
  done
done

# ---- real non-agent programs with agent text on screen ----
mkdir -p "$WORK/claude-proj"
cp scripts/fake_agent_screen.py "$WORK/ui.py"
cat > "$WORK/claude-proj/CLAUDE.md" <<'MD'
# CLAUDE.md
When Claude Code asks "Do you want to proceed?" answer with care.
─────────────────────────────────────────────
❯ 1. Yes
  2. No
 Esc to cancel · Tab to amend · ctrl+e to explain
✽ Contemplating… (3s · ↓ 7 tokens)
  esc to interrupt · ← for agents
MD
{ for i in $(seq 1 30); do echo "2026-11-20T10:00:$i app[$i]: agent said: ✻ API error · Retrying in 3s · attempt $i/10"; done
  echo "  Would you like to run the following command?"; echo "› 1. Yes, proceed (y)"; echo "  Press enter to confirm or esc to cancel"; } > "$WORK/agent.log"
mkdir -p "$WORK/.claude/projects/x"
for i in $(seq 1 40); do echo "{\"type\":\"assistant\",\"message\":{\"content\":\"Do you want to proceed? esc to interrupt ❯ 1. Yes ($i)\"}}"; done > "$WORK/.claude/projects/x/s.jsonl"
BASH_RC="$WORK/rc"; printf 'PS1="dev@box:~/claude-proj\\$ "\ncd %s/claude-proj\n' "$WORK" > "$BASH_RC"

for size in 80x24 200x50; do
  cols=${size%x*}; rows=${size#*x}
  window "$cols" "$rows" bash --noprofile --rcfile "$BASH_RC" -i; sleep 0.5
  $T send-keys -t gen:w "python3 $WORK/ui.py claude idle & sleep 0.3; kill %1" Enter; sleep 1
  capture "$GD" "bash_after_claude_ui_${size}" "$cols" "$rows" unmanaged none none "" "bash (cwd claude-proj) after a background process drew a Claude idle screen"
  window "$cols" "$rows" vim -u NONE -N "$WORK/claude-proj/CLAUDE.md"; sleep 0.7
  capture "$GD" "vim_claude_md_${size}" "$cols" "$rows" unmanaged none none "" "vim -u NONE on a CLAUDE.md quoting Claude dialog/footer lines"
  window "$cols" "$rows" less "$WORK/agent.log"; sleep 0.5; $T send-keys -t gen:w G; sleep 0.4
  capture "$GD" "less_agent_log_${size}" "$cols" "$rows" unmanaged none none "" "less (at END) on a log quoting Claude retry and Codex approval lines"
  window "$cols" "$rows" top -d 5; sleep 1
  capture "$GD" "top_${size}" "$cols" "$rows" unmanaged none none "" "top (htop not installed)"
  window "$cols" "$rows" python3 -q; sleep 0.5
  $T send-keys -t gen:w "print('\\u203a Ask Codex to do anything\\n\\n  gpt-5.5 \\u00b7 /srv\\n  ? for shortcuts')" Enter; sleep 0.5
  capture "$GD" "python3_repl_codex_text_${size}" "$cols" "$rows" unmanaged none none "" "python3 REPL that printed a Codex composer and footer"
  window "$cols" "$rows" node; sleep 1
  $T send-keys -t gen:w "console.log('\\u203a Ask Codex to do anything\\n\\n  gpt-5.5 \\u00b7 /srv/app\\n  \\u2190 for agents \\u00b7 ? for shortcuts')" Enter; sleep 0.6
  capture "$GD" "node_repl_codex_text_${size}" "$cols" "$rows" unmanaged none none "" "node REPL (command node, no argv) that printed a Codex composer and footer"
  window "$cols" "$rows" tail -f "$WORK/.claude/projects/x/s.jsonl"; sleep 0.5
  capture "$GD" "tail_transcript_${size}" "$cols" "$rows" unmanaged none none "" "tail -f of a Claude transcript jsonl quoting dialog words"
done
# paths of the temp dir would leak into captures: rewrite them
# (`-i.bak` then removing the backups works with both GNU and BSD sed.)
sed -i.bak "s#$WORK#/home/dev#g" "$GD"/*.txt "$GD/labels.tsv"
rm -f "$GD"/*.txt.bak "$GD/labels.tsv.bak"
echo "generated: $(($(wc -l < "$GA/labels.tsv") - 1)) agent + $(($(wc -l < "$GD/labels.tsv") - 1)) decoy screens"
