//! What the projection notices while resolving (signature and tier transitions), left as
//! [`Note`]s for `daemon::metrics` to count and logged as one `key=value` line each.
//!
//! WHY its own module: the projection sits below the daemon, so the note type and the log
//! formats it uses live beside it rather than in the daemon's metrics (which imports them).
use crate::core::classifier::Transition;
use crate::core::resolver::TierTransition;
use crate::core::types::PaneId;

/// Notes the projection keeps when nobody drains them (unit tests, no runtime).
pub(crate) const MAX_NOTES: usize = 10_000;

/// Something the projection noticed while resolving, for metrics (drained every step).
#[derive(Debug, Clone)]
pub enum Note {
    Signature {
        pane: PaneId,
        from: &'static str,
        to: &'static str,
        reason: String,
    },
    Fallback,
    RePromotion,
}

/// The log line of a signature transition (one `key=value` line, the key not repeated).
pub(crate) fn signature_log(pane: &PaneId, t: &Transition) -> String {
    format!(
        "signature_transition pane={pane} from={} to={} presence={} provider={} reason={:?}",
        t.from,
        t.to,
        t.presence,
        t.provider.map_or("none", |p| p.as_str()),
        t.reason
    )
}

/// The log line of a fallback / re-promotion.
pub(crate) fn tier_log(pane: &PaneId, t: &TierTransition) -> String {
    match t {
        TierTransition::Fallback { from, reason } => {
            format!("tier_transition pane={pane} kind=fallback from={from} reason={reason:?}")
        }
        TierTransition::RePromotion { to } => {
            format!("tier_transition pane={pane} kind=re_promotion to={to}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::{Presence, SourceKind};

    #[test]
    fn log_lines_do_not_repeat_keys() {
        let t = Transition {
            from: crate::core::classifier::SignatureClass::None,
            to: crate::core::classifier::SignatureClass::Heuristic,
            presence: Presence::Managed,
            provider: Some(crate::core::types::Provider::Claude),
            reason: "process_hint provider=claude".into(),
        };
        let l = signature_log(&"%1".into(), &t);
        assert_eq!(l.matches("signature_transition").count(), 1);
        assert!(l.starts_with("signature_transition pane=%1 from=none to=heuristic"));
        let l = tier_log(
            &"%2".into(),
            &TierTransition::Fallback {
                from: SourceKind::ClaudeHooks,
                reason: "source_down".into(),
            },
        );
        assert_eq!(
            l,
            "tier_transition pane=%2 kind=fallback from=claude_hooks reason=\"source_down\""
        );
    }
}
