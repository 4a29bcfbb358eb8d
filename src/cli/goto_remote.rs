//! Go to a remote pane (issue 24, the popup's Enter on a remote row): open, or reuse, a local
//! window running `ssh -t HOST tmux -S SOCKET attach-session -t $S ; select-window -t @W ;
//! select-pane -t %N`, and switch the client there.
//!
//! WHY this shape: the remote pane lives in another machine's tmux server, so "going there" is
//! attaching to it through the same ssh the stream uses (`@agtmux-ssh-command`, BatchMode).
//! A local window is tagged with `@agtmux_remote_target` = `host/server/session`; Enter on
//! another pane of that session reuses it and only selects the pane there (one short ssh).
//! Every id comes from the remote and is untrusted: it must have tmux's shape (`$N`, `@N`,
//! `%N`), the socket path must be absolute and clean, and all of it reaches ssh as argv, the
//! remote command line shell-quoted word by word (`daemon::remote::RemoteConfig::ssh_argv`).
use super::client;
use crate::core::types::PaneId;
use crate::daemon::remote::RemoteConfig;
use crate::exit::ExitCode;
use crate::sources::remote::{host_ok, socket_ok};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

fn id_ok(s: &str, sigil: char) -> bool {
    s.len() >= 2
        && s.len() <= 12
        && s.starts_with(sigil)
        && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// A pane of a remote host's tmux server, as a popup row names it (`cli::popup::RowId`): the
/// host and server of the daemon's `remotes` list, and the pane's id, parsed once where the
/// row is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemotePane {
    pub host: String,
    pub server: String,
    pub pane: PaneId,
}

/// What Enter needs of a remote row, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub host: String,
    pub server: String,
    pub socket: String,
    pub session_id: String,
    pub session_name: String,
    pub window_id: String,
    pub pane_id: PaneId,
}

impl Target {
    /// The popup's remote row `r`, looked up in its `list`.
    pub(crate) fn find(list: &Value, r: &RemotePane) -> Result<Target, String> {
        let h = (list["remotes"].as_array().into_iter().flatten())
            .find(|h| h["host"].as_str() == Some(r.host.as_str()))
            .ok_or("that host is no longer listed")?;
        let srv = (h["servers"].as_array().into_iter().flatten())
            .find(|s| s["server"].as_str() == Some(r.server.as_str()))
            .ok_or("that server is no longer listed")?;
        let p = client::all_panes(&serde_json::json!({"sessions": srv["sessions"]}))
            .into_iter()
            .find(|p| p["pane_id"].as_str() == Some(r.pane.as_str()))
            .cloned()
            .ok_or("that pane is no longer listed")?;
        let t = Target {
            host: r.host.clone(),
            server: r.server.clone(),
            socket: srv["socket"].as_str().unwrap_or("").to_string(),
            session_id: p["session_id"].as_str().unwrap_or("").to_string(),
            session_name: p["session_name"].as_str().unwrap_or("").to_string(),
            window_id: p["window_id"].as_str().unwrap_or("").to_string(),
            pane_id: r.pane.clone(),
        };
        if !host_ok(&t.host)
            || !socket_ok(&t.socket)
            || !id_ok(&t.session_id, '$')
            || !id_ok(&t.window_id, '@')
        {
            return Err(format!("refusing a malformed remote target {t:?}"));
        }
        Ok(t)
    }

    /// `@agtmux_remote_target` of the local window that shows this session.
    pub(crate) fn tag(&self) -> String {
        crate::sources::remote::window_tag(&self.host, &self.server, &self.session_id)
    }

    /// The remote tmux command: attach (or, with `attach` false, only select) and select the
    /// window and pane. `;` is a separate word: tmux's command separator.
    pub(crate) fn remote_words(&self, attach: bool) -> Vec<String> {
        let mut w: Vec<String> = vec!["tmux".into(), "-S".into(), self.socket.clone()];
        if attach {
            w.extend(["attach-session", "-t", &self.session_id, ";"].map(String::from));
        }
        w.extend(
            [
                "select-window",
                "-t",
                &self.window_id,
                ";",
                "select-pane",
                "-t",
                &self.pane_id,
            ]
            .map(String::from),
        );
        w
    }
}

fn tmux(socket: &Path) -> Command {
    let mut c = Command::new("tmux");
    c.arg("-S").arg(socket);
    c.stdin(Stdio::null());
    c
}

/// The ssh and remote-command options of this tmux server (what its daemon uses).
fn config(socket: &Path) -> RemoteConfig {
    let mut opts = Vec::new();
    for name in ["@agtmux-ssh-command", "@agtmux-remote-command"] {
        if let Ok(o) = tmux(socket).args(["show-options", "-gqv", name]).output() {
            let v = String::from_utf8_lossy(&o.stdout).trim_end().to_string();
            if !v.is_empty() {
                opts.push((name.to_string(), v));
            }
        }
    }
    RemoteConfig::from_options(&opts)
}

/// Enter on a remote row.
pub fn go(socket: &Path, client_name: Option<&str>, list: &Value, r: &RemotePane) -> ExitCode {
    let t = match Target::find(list, r) {
        Ok(t) => t,
        Err(e) => return client::fail(&e, ExitCode::Failure),
    };
    let cfg = config(socket);
    let tag = t.tag();
    let existing = tmux(socket)
        .args([
            "list-windows",
            "-a",
            "-F",
            "#{window_id}\t#{@agtmux_remote_target}",
        ])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                let (w, tg) = l.split_once('\t')?;
                (tg == tag).then(|| w.to_string())
            })
        });
    let window = match existing {
        Some(w) => {
            // Attached there already: only select the pane (a short, prompt-free ssh).
            let argv = cfg.ssh_argv(&t.host, false, &t.remote_words(false));
            let ok = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                log::warn!("remote_select_failed host={} pane={}", t.host, t.pane_id);
            }
            w
        }
        None => {
            let argv = cfg.ssh_argv(&t.host, true, &t.remote_words(true));
            let name: String = format!("{}:{}", t.host, t.session_name)
                .chars()
                .filter(|c| !c.is_control())
                .take(40)
                .collect();
            let out = tmux(socket)
                .args(["new-window", "-P", "-F", "#{window_id}", "-n", &name, "--"])
                .args(&argv)
                .output();
            let w = match out {
                Ok(o) if o.status.success() => {
                    String::from_utf8_lossy(&o.stdout).trim().to_string()
                }
                Ok(o) => {
                    return client::fail(
                        &format!(
                            "tmux new-window: {}",
                            String::from_utf8_lossy(&o.stderr).trim()
                        ),
                        ExitCode::Failure,
                    );
                }
                Err(e) => return client::fail(&format!("tmux: {e}"), ExitCode::Failure),
            };
            if !id_ok(&w, '@') {
                return client::fail(&"tmux new-window gave no window id", ExitCode::Failure);
            }
            let _ = tmux(socket)
                .args(["set-option", "-w", "-t", &w, "@agtmux_remote_target", &tag])
                .status();
            w
        }
    };
    let mut sw = tmux(socket);
    sw.arg("switch-client");
    if let Some(c) = client_name {
        sw.args(["-c", c]);
    }
    sw.args(["-t", &window]).stdout(Stdio::null());
    match sw.status() {
        Ok(s) if s.success() => ExitCode::Ok,
        _ => ExitCode::Failure,
    }
}

/// The remote agtmux words for a popup action on a remote pane: `approve|deny -S SOCKET %N`
/// or `reply -S SOCKET %N TEXT` (run there by `ssh HOST`, each word shell-quoted).
pub(crate) fn act_words(
    cfg: &RemoteConfig,
    t: &Target,
    act: &crate::core::dialog::Act,
) -> Vec<String> {
    use crate::core::dialog::Act;
    let mut w = cfg.remote_cmd.clone();
    let verb = match act {
        Act::Approve => "approve",
        Act::Deny => "deny",
        Act::Reply(_) => "reply",
    };
    w.extend([verb, "-S", &t.socket, &t.pane_id].map(String::from));
    if let Act::Reply(text) = act {
        w.push(text.clone());
    }
    w
}

/// y / n / r on a remote row: `ssh -T -o BatchMode=yes HOST agtmux approve|deny|reply -S
/// SOCKET %N [TEXT]`; the remote agtmux checks the dialog on its own screen. Returns the
/// popup's message line (the remote's own words on a refusal).
pub fn act(socket: &Path, list: &Value, r: &RemotePane, act: &crate::core::dialog::Act) -> String {
    let t = match Target::find(list, r) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let host_live = (list["remotes"].as_array().into_iter().flatten())
        .any(|h| h["host"].as_str() == Some(t.host.as_str()) && h["status"] == "live");
    if !host_live {
        return format!("{}: unreachable, nothing sent", t.host);
    }
    let cfg = config(socket);
    let argv = cfg.ssh_argv(&t.host, false, &act_words(&cfg, &t, act));
    match Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => {
            let text = if o.status.success() {
                &o.stdout
            } else {
                &o.stderr
            };
            let said: String = String::from_utf8_lossy(text)
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .take(160)
                .collect();
            if o.status.success() {
                format!("{} {}: {} sent {said}", t.host, t.pane_id, act.verb())
            } else {
                format!("{} {}: {said}", t.host, t.pane_id)
            }
        }
        Err(e) => format!("cannot run {:?}: {e}", argv[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(socket: &str, session: &str) -> Value {
        json!({"remotes": [{"host": "devbox", "servers": [{"server": "default-1", "socket": socket,
            "sessions": [{"session_id": session, "windows": [{"window_id": "@2", "panes": [
                {"pane_id": "%7", "session_id": session, "session_name": "main", "window_id": "@2"}]}]}]}]}]})
    }

    #[test]
    fn targets_are_validated_and_commands_are_argv() {
        let r = RemotePane {
            host: "devbox".into(),
            server: "default-1".into(),
            pane: "%7".into(),
        };
        let t = Target::find(&list("/tmp/tmux-0/default", "$1"), &r).unwrap();
        assert_eq!(t.tag(), "devbox/default-1/$1");
        let cfg = RemoteConfig::default();
        let argv = cfg.ssh_argv(&t.host, true, &t.remote_words(true));
        assert_eq!(
            argv.last().unwrap(),
            "tmux -S /tmp/tmux-0/default attach-session -t '$1' ';' select-window -t @2 ';' select-pane -t %7"
        );
        assert!(argv.contains(&"-t".to_string()));
        // A row that is no longer listed (another pane, host or server) is refused.
        let gone = |host: &str, server: &str, pane: &str| RemotePane {
            host: host.into(),
            server: server.into(),
            pane: pane.into(),
        };
        for (r, why) in [
            (
                gone("devbox", "default-1", "%8"),
                "that pane is no longer listed",
            ),
            (
                gone("devbox", "default-2", "%7"),
                "that server is no longer listed",
            ),
            (
                gone("elsewhere", "default-1", "%7"),
                "that host is no longer listed",
            ),
        ] {
            assert_eq!(Target::find(&list("/tmp/s", "$1"), &r), Err(why.into()));
        }
        // A hostile session id or socket from the remote is refused, not quoted into a shell.
        assert!(Target::find(&list("/tmp/x", "$1;reboot"), &r).is_err());
        assert!(Target::find(&list("relative", "$1"), &r).is_err());
        // A socket with a quote is shell-quoted, never split.
        let t = Target::find(&list("/tmp/a'b c", "$1"), &r).unwrap();
        let argv = cfg.ssh_argv(&t.host, false, &t.remote_words(false));
        assert!(
            argv.last()
                .unwrap()
                .starts_with(r"tmux -S '/tmp/a'\''b c' ")
        );
        // Actions: the reply text is one quoted word, whatever it holds.
        let t = Target::find(&list("/tmp/s", "$1"), &r).unwrap();
        let reply = crate::core::dialog::Act::Reply("yes; rm -rf ~ 'x'".into());
        let argv = cfg.ssh_argv(&t.host, false, &act_words(&cfg, &t, &reply));
        assert_eq!(
            argv.last().unwrap(),
            r"agtmux reply -S /tmp/s %7 'yes; rm -rf ~ '\''x'\'''"
        );
    }
}
