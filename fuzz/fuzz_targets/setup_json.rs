//! The user's agent settings that `agtmux setup` merges into (src/cli/setup/json_merge.rs):
//! any JSON document (Claude's settings.json, Codex's hooks.json) and any hook command text.
//! Never a panic; install then uninstall leaves none of ours, and install is idempotent.
#![no_main]
use agtmux::cli::setup::Agent;
use agtmux::cli::setup::json_merge::{install, is_ours_command, split_simple_command, uninstall};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = split_simple_command(&text);
    for agent in [Agent::Claude, Agent::Codex] {
        let _ = is_ours_command(&text, agent);
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for (agent, cmd) in [
        (Agent::Claude, "/opt/agtmux/bin/agtmux hook claude"),
        (Agent::Codex, "/opt/agtmux/bin/agtmux hook codex"),
    ] {
        let events = ["Stop", "UserPromptSubmit"];
        let Ok((once, _)) = install(doc.clone(), agent, cmd, &events) else {
            continue;
        };
        let (twice, ch) = install(once.clone(), agent, cmd, &events).expect("install twice");
        assert_eq!(once, twice, "install is not idempotent: {ch:?}");
        let _ = uninstall(twice, agent);
        let _ = uninstall(doc.clone(), agent);
    }
});
