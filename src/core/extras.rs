//! What a pane's activity alone does not say (issue 23): when a usage limit resets, an API
//! retry in progress ("retrying 3/10"), a compaction, and background work still running after
//! the turn ended.
//!
//! WHY a module of its own: the resolver decides the activity; these are details that ride on
//! the winner's evidence (a hook, the rollout, the app-server) and, where no event says them,
//! on the screen. Keeping them here leaves the resolver's tiers untouched: [`settle`] runs after
//! it and only (a) fills the details and (b) turns a `limited` pane back into `idle` once its
//! reset time has passed.
//!
//! Rule (as everywhere): deterministic evidence first, the screen as the fallback, and never
//! a state the agent is not in. A limit whose reset time no source tells stays `limited` until
//! the next prompt, as the agent itself does.
//!
//! Pure: the caller passes `now` and the local UTC offset (the agents print local wall times).
use super::patterns::{self, Layout};
use super::types::{Activity, Millis, Provider};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// Work a running turn is doing that is not an ordinary model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// The agent retries an API call by itself (rate limit, overload, connection).
    Retrying { attempt: u32, max: u32 },
    /// The agent compacts its context.
    Compacting,
}

impl Work {
    /// The short label surfaces show: `retrying 3/10`, `compacting`.
    pub fn label(&self) -> String {
        match self {
            Work::Retrying { attempt, max } => format!("retrying {attempt}/{max}"),
            Work::Compacting => "compacting".into(),
        }
    }
}

/// The details an event carries (`NormalizedEvent::extra`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventExtra {
    /// Usage limit: when it resets (epoch ms), when the event says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Millis>,
    /// Background tasks still running when the event fired (Claude's `Stop.background_tasks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<u32>,
    /// What a running turn is doing (`PreCompact` → compacting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Work>,
}

/// What the screen shows besides the activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScreenExtras {
    pub work: Option<Work>,
    /// Background tasks the footer/status line counts.
    pub background: Option<u32>,
    /// The usage-limit line of the last turn (`You've hit your session limit · resets 7pm`).
    pub limit_text: Option<String>,
}

/// The details a pane shows, after [`settle`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// `limited` only: when the limit resets (epoch ms), when known.
    pub until: Option<Millis>,
    /// Background tasks still running (idle panes only).
    pub background: u32,
    /// `running` only.
    pub work: Option<Work>,
}

impl Extras {
    /// One short line for the status line, popup and `ls`: `limit until 15:00`,
    /// `retrying 3/10`, `compacting`, `1 background`; empty when there is nothing to say.
    pub fn label(&self, activity: Activity, utc_offset_s: i64) -> String {
        match activity {
            Activity::Limited => match self.until {
                Some(u) => format!("limit until {}", clock_hm(u, utc_offset_s)),
                None => "limit".into(),
            },
            Activity::Running => self.work.map(|w| w.label()).unwrap_or_default(),
            Activity::Idle if self.background > 0 => format!("{} background", self.background),
            _ => String::new(),
        }
    }
}

/// `HH:MM` of `ms` in the zone `utc_offset_s` seconds east of UTC.
pub fn clock_hm(ms: Millis, utc_offset_s: i64) -> String {
    let local = ms.div_euclid(1000) + utc_offset_s;
    let d = local.rem_euclid(86_400);
    format!("{:02}:{:02}", d / 3600, d / 60 % 60)
}

/// The winner's evidence for the details: `None` when the screen decided.
#[derive(Debug, Clone, Copy, Default)]
pub struct WinnerExtra {
    pub extra: EventExtra,
    /// When the winner's state began (its event's ts).
    pub ts: Millis,
}

/// The final activity and details of a pane. `activity` is the resolver's answer; `det` the
/// winner's details when deterministic evidence won; `screen` what the screen shows (only
/// used where the winner says nothing). Returns the activity (a passed reset turns `limited`
/// into `idle`), the details, and when to look again (the reset time).
pub fn settle(
    activity: Activity,
    det: Option<WinnerExtra>,
    screen: Option<&ScreenExtras>,
    now: Millis,
    utc_offset_s: i64,
) -> (Activity, Extras, Option<Millis>) {
    let mut out = Extras::default();
    let mut deadline = None;
    let mut activity = activity;
    let det_extra = det.map(|d| d.extra);
    if activity == Activity::Limited {
        let until = det_extra.and_then(|e| e.until).or_else(|| {
            screen
                .and_then(|s| s.limit_text.as_deref())
                .and_then(|t| parse_reset(t, det.map_or(now, |d| d.ts.min(now)), utc_offset_s))
        });
        match until {
            Some(u) if u <= now => activity = Activity::Idle,
            Some(u) => {
                out.until = Some(u);
                deadline = Some(u);
            }
            None => {}
        }
    }
    match activity {
        Activity::Running => {
            // A retry has no hook or rollout entry (docs/usage-states.md): the screen says it. A
            // compaction is said by the hook (`PreCompact`) and by the screen.
            out.work = det_extra
                .and_then(|e| e.work)
                .or_else(|| screen.and_then(|s| s.work));
        }
        Activity::Idle => {
            // The screen's count is what the agent shows now; the hook's is as of its Stop.
            out.background = screen
                .and_then(|s| s.background)
                .or(det_extra.and_then(|e| e.background))
                .unwrap_or(0);
        }
        _ => {}
    }
    (activity, out, deadline)
}

fn re(p: &str) -> Option<Regex> {
    Regex::new(p).ok()
}

static CLAUDE_RETRY: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"Retrying in \d+\s*\w*.*·\s*attempt (\d+)\s*/\s*(\d+)"));
static CLAUDE_COMPACTING: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?m)^[·✢✳✶✻✽✺*]\s+Compacting conversation"));
static CLAUDE_BACKGROUND: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?:^|[\s·])(\d{1,4}) (?:shells?|monitors?|local agents?|background tasks?)\b")
});
static CLAUDE_LIMIT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"You[’']ve hit your (?:session|weekly|usage|[a-z ]{0,30}) limit\b[^\n]{0,80}")
});
static CODEX_RETRY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?m)^•\s+(?:Reconnecting\.\.\.|Server is busy, reconnecting) (\d+)/(\d+)")
});
static CODEX_COMPACTING: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?m)^•\s+Compacting context"));
static CODEX_BACKGROUND: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(\d{1,4}) background terminals? running"));
static CODEX_LIMIT: LazyLock<Option<Regex>> =
    // Codex prints a typographic apostrophe (`You’ve`), and the message wraps.
    LazyLock::new(|| re(r"You[’']ve hit your usage limit\.[^■›]{0,400}"));

fn region(lines: &[String], from: usize, to: usize) -> String {
    let to = to.min(lines.len());
    let from = from.min(to);
    lines[from..to].join("\n")
}

/// The last `n` non-empty lines before `end`, as one text.
fn tail(lines: &[String], end: usize, n: usize) -> String {
    super::screen::nonempty_tail(lines, end, n).join("\n")
}

fn pair(re: &Option<Regex>, text: &str) -> Option<(u32, u32)> {
    let c = re.as_ref()?.captures_iter(text).last()?;
    let a = c.get(1)?.as_str().parse().ok()?;
    let m = c.get(2)?.as_str().parse().ok()?;
    (a >= 1 && m >= a && m <= 1000).then_some((a, m))
}

/// The work `above` (the lines above the input box) shows: a retry with its attempt and
/// maximum, else a compaction.
fn work(retry: &Option<Regex>, compacting: &Option<Regex>, above: &str) -> Option<Work> {
    pair(retry, above)
        .map(|(attempt, max)| Work::Retrying { attempt, max })
        .or_else(|| {
            compacting
                .as_ref()
                .is_some_and(|r| r.is_match(above))
                .then_some(Work::Compacting)
        })
}

fn count(re: &Option<Regex>, text: &str) -> Option<u32> {
    let re = re.as_ref()?;
    let mut total: Option<u32> = None;
    for c in re.captures_iter(text) {
        let n: u32 = c.get(1)?.as_str().parse().ok()?;
        total = Some(total.unwrap_or(0).saturating_add(n));
    }
    total
}

fn found(re: &Option<Regex>, text: &str) -> Option<String> {
    re.as_ref()?
        .find_iter(text)
        .last()
        .map(|m| m.as_str().trim().to_string())
}

/// What the screen shows besides the activity, read in the places the agent draws it: the
/// status line above the input box (retry, compaction), the footer (Claude's background
/// count), the last turn (the usage-limit message). `lines` are normalized
/// (`core::screen::normalize_lines`).
pub fn screen_extras(provider: Provider, lines: &[String]) -> ScreenExtras {
    let layout: Layout = patterns::layout_for(provider, lines);
    let Some(_) = layout.input_box else {
        return ScreenExtras::default();
    };
    let above = tail(lines, layout.box_top, 6);
    let footer = region(lines, layout.footer_start, lines.len());
    let last_turn = region(
        lines,
        layout.last_user_turn.map_or(0, |u| u + 1),
        layout.box_top,
    );
    let mut out = ScreenExtras::default();
    match provider {
        Provider::Claude => {
            out.work = work(&CLAUDE_RETRY, &CLAUDE_COMPACTING, &above);
            out.background = count(&CLAUDE_BACKGROUND, &footer);
            out.limit_text = found(&CLAUDE_LIMIT, &last_turn);
        }
        Provider::Codex => {
            out.work = work(&CODEX_RETRY, &CODEX_COMPACTING, &above);
            // Codex draws the count on the line above its composer, or below it.
            out.background =
                count(&CODEX_BACKGROUND, &above).or_else(|| count(&CODEX_BACKGROUND, &footer));
            out.limit_text = found(&CODEX_LIMIT, &last_turn);
        }
        _ => {}
    }
    out
}

static RESET: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(concat!(
        r"(?i)(?:resets|try again at)\s+",
        r"(?:(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(?:(\d{4}),?\s+)?)?",
        r"(\d{1,2})(?::(\d{2}))?\s*([ap]m)",
        r"(?:\s*\(([^)]{1,64})\))?"
    ))
});

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year of a day count.
fn year_of(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

/// The reset time an agent printed, as epoch ms: Claude's `resets 7:10pm (UTC)`,
/// `resets Dec 7, 5pm (Europe/Berlin)`, Codex's `try again at 7:13 PM`. The agents print
/// local wall time: `(UTC)` means UTC, anything else the local zone (`utc_offset_s`). A time
/// without a date is the next such time after `seen` (when the agent printed it). `None` when
/// the text holds no reset time.
pub fn parse_reset(text: &str, seen: Millis, utc_offset_s: i64) -> Option<Millis> {
    let c = RESET.as_ref()?.captures(text)?;
    let mut hour: i64 = c.get(4)?.as_str().parse().ok()?;
    let minute: i64 = c.get(5).map_or(Ok(0), |m| m.as_str().parse()).ok()?;
    if !(1..=12).contains(&hour) || minute > 59 {
        return None;
    }
    let pm = c.get(6)?.as_str().eq_ignore_ascii_case("pm");
    hour = hour % 12 + if pm { 12 } else { 0 };
    let offset = match c.get(7).map(|z| z.as_str()) {
        Some("UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z") => 0,
        _ => utc_offset_s,
    };
    let local_now_s = seen.div_euclid(1000) + offset;
    let day_s = hour * 3600 + minute * 60;
    let local_s = match (c.get(1), c.get(2)) {
        (Some(mon), Some(day)) => {
            let m = MONTHS
                .iter()
                .position(|x| mon.as_str().to_ascii_lowercase().starts_with(x))?
                as i64
                + 1;
            let d: i64 = day.as_str().parse().ok()?;
            if !(1..=31).contains(&d) {
                return None;
            }
            let this_year = year_of(local_now_s.div_euclid(86_400));
            let y = match c.get(3) {
                Some(y) => y.as_str().parse().ok()?,
                None => this_year,
            };
            let mut t = days_from_civil(y, m, d) * 86_400 + day_s;
            if c.get(3).is_none() && t < local_now_s - 86_400 {
                t = days_from_civil(y + 1, m, d) * 86_400 + day_s;
            }
            t
        }
        _ => {
            let mut t = local_now_s.div_euclid(86_400) * 86_400 + day_s;
            // The agent prints the next reset: a wall time already gone today is tomorrow's
            // (a minute of slack for a clock read in the same minute).
            if t < local_now_s - 60 {
                t += 86_400;
            }
            t
        }
    };
    Some((local_s - offset) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04 18:55:00 UTC.
    const SEEN: Millis = 1_796_410_500_000;

    #[test]
    fn days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            days_from_civil(2026, 12, 4) * 86_400 + 18 * 3600 + 55 * 60,
            SEEN / 1000
        );
        assert_eq!(year_of(days_from_civil(2026, 12, 31)), 2026);
        assert_eq!(year_of(days_from_civil(2027, 1, 1)), 2027);
    }

    #[test]
    fn reset_times_as_the_agents_print_them() {
        let h = |hh: i64, mm: i64| (SEEN / 1000 / 86_400 * 86_400 + hh * 3600 + mm * 60) * 1000;
        let cases: &[(&str, i64, Option<Millis>)] = &[
            (
                "You've hit your session limit · resets 7:10pm (UTC)",
                0,
                Some(h(19, 10)),
            ),
            (
                "You've hit your session limit · resets 7pm (UTC)",
                0,
                Some(h(19, 0)),
            ),
            // Local zone one hour east: 8:10pm local is 19:10 UTC.
            (
                "You've hit your session limit · resets 8:10pm (Europe/Berlin)",
                3600,
                Some(h(19, 10)),
            ),
            // A time already past today is tomorrow's.
            ("resets 6am (UTC)", 0, Some(h(6, 0) + 86_400_000)),
            (
                "You've hit your weekly limit · resets Dec 7, 5:11pm (UTC)",
                0,
                Some(h(17, 11) + 3 * 86_400_000),
            ),
            (
                "■ You've hit your usage limit. Upgrade to Pro or try again at 7:13 PM.",
                0,
                Some(h(19, 13)),
            ),
            ("You've hit your usage limit.", 0, None),
            // As codex-cli 0.169 prints it (typographic apostrophe, wrapped at the width).
            (
                "■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/\nusage to purchase more credits or try again at 8:43 PM.",
                0,
                Some(h(20, 43)),
            ),
            ("resets 13:10pm (UTC)", 0, None),
            ("resets sometime", 0, None),
        ];
        for (text, off, want) in cases {
            assert_eq!(parse_reset(text, SEEN, *off), *want, "{text}");
        }
        // A date in January seen in December is next year's.
        let jan = parse_reset("resets Jan 2, 1am (UTC)", SEEN, 0);
        assert_eq!(
            jan,
            Some((days_from_civil(2027, 1, 2) * 86_400 + 3600) * 1000)
        );
    }

    #[test]
    fn settle_ends_a_limit_at_its_reset_and_fills_details() {
        let until = SEEN + 3_600_000;
        let det = WinnerExtra {
            extra: EventExtra {
                until: Some(until),
                ..EventExtra::default()
            },
            ts: SEEN,
        };
        let (a, x, d) = settle(Activity::Limited, Some(det), None, SEEN + 1, 0);
        assert_eq!(
            (a, x.until, d),
            (Activity::Limited, Some(until), Some(until))
        );
        assert_eq!(x.label(a, 0), "limit until 19:55");
        let (a, x, d) = settle(Activity::Limited, Some(det), None, until, 0);
        assert_eq!((a, x.until, d), (Activity::Idle, None, None));
        // No reset known from the event: the screen's line; none at all: stays limited.
        let scr = ScreenExtras {
            limit_text: Some("You've hit your session limit · resets 8pm (UTC)".into()),
            ..ScreenExtras::default()
        };
        let plain = WinnerExtra {
            ts: SEEN,
            ..WinnerExtra::default()
        };
        let (a, x, _) = settle(Activity::Limited, Some(plain), Some(&scr), SEEN + 5, 0);
        assert_eq!(
            (a, x.label(a, 0)),
            (Activity::Limited, "limit until 20:00".into())
        );
        let (a, x, d) = settle(Activity::Limited, Some(plain), None, SEEN + 99_000_000, 0);
        assert_eq!(
            (a, x.label(a, 0), d),
            (Activity::Limited, "limit".into(), None)
        );
        // Retry detail comes from the screen while running; never on an idle pane.
        let retry = ScreenExtras {
            work: Some(Work::Retrying {
                attempt: 3,
                max: 10,
            }),
            background: Some(2),
            ..ScreenExtras::default()
        };
        let (a, x, _) = settle(Activity::Running, Some(plain), Some(&retry), SEEN, 0);
        assert_eq!(x.label(a, 0), "retrying 3/10");
        let (a, x, _) = settle(Activity::Idle, None, Some(&retry), SEEN, 0);
        assert_eq!(
            (x.work, x.background, x.label(a, 0)),
            (None, 2, "2 background".into())
        );
        // The hook's compaction wins over a screen that does not show it yet.
        let compact = WinnerExtra {
            extra: EventExtra {
                work: Some(Work::Compacting),
                ..EventExtra::default()
            },
            ts: SEEN,
        };
        let (a, x, _) = settle(Activity::Running, Some(compact), None, SEEN, 0);
        assert_eq!(x.label(a, 0), "compacting");
        // Background from the Stop hook when the screen does not count it.
        let bg = WinnerExtra {
            extra: EventExtra {
                background: Some(1),
                ..EventExtra::default()
            },
            ts: SEEN,
        };
        let (_, x, _) = settle(
            Activity::Idle,
            Some(bg),
            Some(&ScreenExtras::default()),
            SEEN,
            0,
        );
        assert_eq!(x.background, 1);
    }

    /// The real TUIs' screens recorded by `scripts/e2e-real --phases states --captures`
    /// (fixtures/screens/real-e2e): what each shows besides its activity.
    #[test]
    fn real_screens_of_claude_code_and_codex() {
        let read = |name: &str| {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/screens/real-e2e")
                .join(name);
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            super::super::screen::normalize_lines(&text)
        };
        use Provider::{Claude, Codex};
        let retry = |attempt, max| Some(Work::Retrying { attempt, max });
        // (provider, capture, work, background, shows a usage limit)
        type Case = (Provider, &'static str, Option<Work>, Option<u32>, bool);
        #[rustfmt::skip] // a table: one case a line
        let cases: &[Case] = &[
            (Claude, "claude_120x40_11_retrying_overloaded", retry(1, 2), None, false),
            (Claude, "claude_120x40_12_retrying_rate_limited", retry(1, 2), None, false),
            (Claude, "claude_120x40_13_background_shell", None, Some(1), false),
            (Claude, "claude_120x40_14_compacting", Some(Work::Compacting), None, false),
            (Claude, "claude_120x40_15_usage_limit", None, None, true),
            (Codex, "codex_120x40_11_retrying", retry(2, 3), None, false),
            (Codex, "codexnd_120x40_11_retrying", retry(2, 3), None, false),
            (Codex, "codex_120x40_13_background_terminal", None, Some(1), false),
            (Codex, "codex_120x40_14_compacting", Some(Work::Compacting), None, false),
            (Codex, "codex_120x40_15_usage_limit", None, None, true),
            (Codex, "codexnd_120x40_15_usage_limit", None, None, true),
        ];
        for (prov, name, work, bg, limit) in cases {
            for ext in [".txt", ".ansi.txt"] {
                let x = screen_extras(*prov, &read(&format!("{name}{ext}")));
                assert_eq!((x.work, x.background), (*work, *bg), "{name}{ext}: {x:?}");
                assert_eq!(x.limit_text.is_some(), *limit, "{name}{ext}: {x:?}");
                if *limit {
                    let t = x.limit_text.unwrap_or_default();
                    assert!(parse_reset(&t, SEEN, 0).is_some(), "{name}{ext}: {t}");
                }
            }
        }
    }

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn claude_screen_details() {
        let rule = "─".repeat(60);
        let retry = lines(&format!(
            "❯ hi\n\n✻ API error · Retrying in 2s · attempt 3/10\n{rule}\n❯ \n{rule}\n  esc to interrupt"
        ));
        assert_eq!(
            screen_extras(Provider::Claude, &retry).work,
            Some(Work::Retrying {
                attempt: 3,
                max: 10
            })
        );
        let bg = lines(&format!(
            "❯ run it\n\n● Running in the background\n{rule}\n❯ \n{rule}\n  ⏵⏵ accept edits on · 1 shell · ↓ to manage"
        ));
        let x = screen_extras(Provider::Claude, &bg);
        assert_eq!((x.background, x.work), (Some(1), None));
        let limit = lines(&format!(
            "❯ hi\n  ⎿  You've hit your session limit · resets 7:10pm (UTC)\n{rule}\n❯ \n{rule}\n  ? for shortcuts"
        ));
        assert_eq!(
            screen_extras(Provider::Claude, &limit)
                .limit_text
                .as_deref(),
            Some("You've hit your session limit · resets 7:10pm (UTC)")
        );
        // The words in the user's own prompt are not the agent's message.
        let prose = lines(&format!(
            "❯ what does You've hit your session limit mean? attempt 3/10 Retrying in 2s\n{rule}\n❯ \n{rule}\n  ? for shortcuts"
        ));
        assert_eq!(
            screen_extras(Provider::Claude, &prose),
            ScreenExtras::default()
        );
    }
}
