//! `agtmux explain %N` (README "Commands", C-002 `explain`): why a pane has its state — the
//! signature class/reason/confidence, every deterministic source's last event and health, the
//! winner and the suppressed sources with reasons, the hysteresis timers, and the last screen
//! verdict's rule and deciding lines. Straight from the daemon's read model.
use super::client::{self, Conn, ServerOpts};
use super::show::s;
use crate::core::types::PaneId;
use crate::exit::ExitCode;
use serde_json::{Value, json};
use std::fmt::Write as _;

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub server: ServerOpts,
    /// The pane, e.g. `%3` (default: `$TMUX_PANE`).
    #[arg(value_parser = PaneId::parse_or_why)]
    pub pane: Option<PaneId>,
    /// Versioned JSON (`{"v":1,...}`, see docs/api.md).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ExplainArgs) -> ExitCode {
    let pane = match (&args.pane, std::env::var("TMUX_PANE")) {
        (Some(p), _) => p.clone(),
        (None, Ok(env)) => match PaneId::parse_or_why(&env) {
            Ok(p) => p,
            Err(e) => return client::fail(&e, ExitCode::Usage),
        },
        (None, Err(_)) => {
            return client::fail(&"which pane? (agtmux explain %N)", ExitCode::Usage);
        }
    };
    let r = Conn::connect(&args.server.paths())
        .and_then(|mut c| c.request("explain", json!({"pane": pane})));
    let x = match r {
        Ok(x) => x,
        Err(e) => return client::fail(&e, ExitCode::Failure),
    };
    if args.json {
        let mut o = json!({"v": 1});
        if let (Some(m), Some(src)) = (o.as_object_mut(), x.as_object()) {
            m.extend(src.clone());
        }
        println!("{o}");
    } else {
        print!("{}", render(&x, client::stdout_is_tty()));
    }
    ExitCode::Ok
}

/// Bold on and off (empty without colour), and the time ages are counted to.
#[derive(Clone, Copy)]
struct Look {
    b: &'static str,
    r: &'static str,
    now: i64,
}

/// The `explain` text, one section after another.
pub(crate) fn render(x: &Value, color: bool) -> String {
    let (b, r) = if color {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    let look = Look {
        b,
        r,
        now: x["now_ms"].as_i64().unwrap_or(0),
    };
    let mut o = String::new();
    for section in [
        pane_section,
        signature_section,
        sources_section,
        resolution_section,
        heuristic_section,
        screen_section,
        last_event_section,
    ] {
        section(&mut o, x, look);
    }
    o
}

/// The pane's state line, its title and its detail.
fn pane_section(o: &mut String, x: &Value, Look { b, r, now }: Look) {
    let p = &x["pane"];
    let _ = writeln!(
        o,
        "{b}{}{r} {} {} {} evidence={} attention={} since {} ago",
        s(&p["pane_id"]),
        s(&p["presence"]),
        s(&p["provider"]),
        s(&p["state"]),
        s(&p["evidence"]),
        s(&p["attention"]),
        client::age(now, p["since_ms"].as_i64().unwrap_or(now))
    );
    let _ = writeln!(o, "  title: {} ({})", s(&p["title"]), s(&p["title_source"]));
    if let Some(d) = p["detail"].as_str().filter(|d| !d.is_empty()) {
        // Issue 23: `limit until 15:00` (and the reset's epoch), `retrying 3/10`, `compacting`,
        // `1 background`.
        let until = p["until_ms"]
            .as_i64()
            .map(|u| format!(" (until_ms={u})"))
            .unwrap_or_default();
        let _ = writeln!(o, "  detail: {d}{until}");
    }
}

/// Why agtmux thinks an agent is here: the signature, the agent process, the Codex thread.
fn signature_section(o: &mut String, x: &Value, Look { b, r, .. }: Look) {
    let g = &x["signature"];
    let _ = writeln!(
        o,
        "{b}signature{r}: {} reason={} confidence={}",
        s(&g["class"]),
        s(&g["reason"]),
        s(&g["confidence"])
    );
    let pr = &x["process"];
    if pr.is_null() {
        let _ = writeln!(o, "{b}process{r}: no agent process");
    } else {
        let _ = writeln!(
            o,
            "{b}process{r}: {} ({}) pid {}",
            s(&pr["provider"]),
            s(&pr["reason"]),
            s(&pr["pid"])
        );
    }
    if let Some(c) = x["codex_binding"].as_str() {
        let _ = writeln!(o, "{b}codex thread{r}: {c}");
    }
}

/// Each source's health and the last event it gave.
fn sources_section(o: &mut String, x: &Value, Look { b, r, now }: Look) {
    let _ = writeln!(o, "{b}sources{r}:");
    if let Some(h) = x["source_health"].as_object() {
        for (name, health) in h {
            let last = x["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["source"] == name.as_str());
            match last {
                Some(d) => {
                    let _ = writeln!(
                        o,
                        "  {name:<16} {} last={}{} -> {}{} {} ago",
                        s(health),
                        s(&d["event"]),
                        d["detail"]
                            .as_str()
                            .map(|x| format!("({x})"))
                            .unwrap_or_default(),
                        s(&d["state"]),
                        if d["ended"] == true { " ended" } else { "" },
                        client::age(now, d["ts_ms"].as_i64().unwrap_or(now))
                    );
                }
                None => {
                    let _ = writeln!(o, "  {name:<16} {} no event", s(health));
                }
            }
        }
    }
}

/// Which source won, which were set aside, and a tier transition.
fn resolution_section(o: &mut String, x: &Value, Look { b, r, .. }: Look) {
    let res = &x["resolution"];
    let _ = writeln!(
        o,
        "{b}resolution{r}: winner={} reason={}",
        s(&res["winner"]),
        s(&res["reason"])
    );
    for sp in res["suppressed"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  suppressed {} ({})",
            s(&sp["source"]),
            s(&sp["reason"])
        );
    }
    if !res["transition"].is_null() {
        let _ = writeln!(o, "  transition {}", s(&res["transition"]));
    }
}

/// The screen heuristic's state, its last change, and the timers that will look again.
fn heuristic_section(o: &mut String, x: &Value, Look { b, r, now }: Look) {
    let h = &x["heuristic"];
    let _ = writeln!(o, "{b}heuristic{r}: {}", s(&h["state"]));
    if let Some(c) = h["last_change"].as_object() {
        let _ = writeln!(
            o,
            "  last change {} -> {} ({})",
            s(&c["from"]),
            s(&c["to"]),
            s(&c["reason"])
        );
    }
    for t in x["timers"].as_array().into_iter().flatten() {
        let d = t["deadline_ms"].as_i64().unwrap_or(now);
        let _ = writeln!(o, "  timer {} in {}ms", s(&t["name"]), d - now);
    }
}

/// The last screen capture: the rule that matched and the lines it saw.
fn screen_section(o: &mut String, x: &Value, Look { b, r, now }: Look) {
    let sc = &x["screen"];
    if sc.is_null() {
        let _ = writeln!(o, "{b}screen{r}: not captured");
    } else {
        let _ = writeln!(
            o,
            "{b}screen{r}: rule={} -> {} confidence={} ({} ago)",
            s(&sc["rule"]),
            s(&sc["state"]),
            s(&sc["confidence"]),
            client::age(now, sc["at_ms"].as_i64().unwrap_or(now))
        );
        for l in sc["lines"].as_array().into_iter().flatten() {
            let _ = writeln!(o, "  | {}", s(l).replace('\x1b', "^["));
        }
    }
}

/// The last event, as `agtmux trace` shows it.
fn last_event_section(o: &mut String, x: &Value, Look { b, r, .. }: Look) {
    let ev = &x["last_event"];
    if !ev.is_null() {
        let _ = write!(
            o,
            "{b}last event{r} (agtmux trace {}):\n{}",
            s(&ev["event_id"]),
            super::trace::render(ev)
        );
    }
}
