//! Accuracy gate for the screen classifier (C-012 + C-006): runs `cli::classify::verdict` — the
//! same code path as `agtmux classify` — over every labelled screen in `fixtures/screens/*/
//! labels.tsv` (plain `.txt`, and the `.ansi.txt` twin when there is one), prints confusion
//! matrices for activity and presence, and fails below: activity accuracy 95 %, approval recall
//! 100 %, false-managed 0. The corpus and the patterns stay apart: no rule names a file.
use agtmux::cli::classify::verdict;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Row {
    file: PathBuf,
    cols: u16,
    rows: u16,
    title: String,
    command: String,
    presence: String,
    provider: String,
    activity: String,
}

fn load(dir: &Path) -> Vec<Row> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let Ok(tsv) = std::fs::read_to_string(d.join("labels.tsv")) else {
            continue;
        };
        for (i, line) in tsv.lines().enumerate() {
            if i == 0 || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            assert!(
                f.len() >= 8,
                "{}: line {} has {} fields",
                d.display(),
                i + 1,
                f.len()
            );
            out.push(Row {
                file: d.join(f[0]),
                cols: f[1].parse().unwrap_or(0),
                rows: f[2].parse().unwrap_or(0),
                title: f[3].to_string(),
                command: f[4].to_string(),
                presence: f[5].to_string(),
                provider: f[6].to_string(),
                activity: f[7].to_string(),
            });
        }
    }
    out
}

fn print_matrix(name: &str, pairs: &[(String, String)]) {
    let mut labels: Vec<&str> = pairs
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let mut m: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (want, got) in pairs {
        *m.entry((want.as_str(), got.as_str())).or_default() += 1;
    }
    println!("\n{name} confusion (rows = label, columns = verdict)");
    print!("{:>17}", "");
    for l in &labels {
        print!(" {:>9}", &l[..l.len().min(9)]);
    }
    println!();
    for want in &labels {
        print!("{want:>17}");
        for got in &labels {
            print!(" {:>9}", m.get(&(*want, *got)).copied().unwrap_or(0));
        }
        println!();
    }
}

#[test]
fn screen_classifier_meets_the_accuracy_gate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/screens");
    let rows = load(&root);
    assert!(
        rows.len() >= 40,
        "corpus too small: {} rows under {}",
        rows.len(),
        root.display()
    );

    let mut activity_pairs = Vec::new();
    let mut presence_pairs = Vec::new();
    let (mut total, mut correct, mut approvals, mut approvals_hit, mut false_managed) =
        (0, 0, 0, 0, 0);
    let mut misses = Vec::new();
    for row in &rows {
        let mut variants = vec![row.file.clone()];
        let ansi = row.file.with_extension("ansi.txt");
        if ansi.exists() && ansi != row.file {
            variants.push(ansi);
        }
        for path in variants {
            let screen = std::fs::read(&path).map(|b| String::from_utf8_lossy(&b).into_owned());
            let Ok(screen) = screen else {
                panic!("cannot read {}", path.display())
            };
            let v = verdict(&screen, &row.title, &row.command, &[], row.cols, row.rows);
            let got_activity = v.activity_str().to_string();
            let got_presence = v.presence.as_str().to_string();
            total += 1;
            let ok = got_activity == row.activity
                && got_presence == row.presence
                && v.provider_str() == row.provider;
            if ok {
                correct += 1;
            } else {
                misses.push(format!(
                    "{}: want {}/{}/{} got {}/{}/{} rule={} sig={}",
                    path.strip_prefix(&root).unwrap_or(&path).display(),
                    row.presence,
                    row.provider,
                    row.activity,
                    got_presence,
                    v.provider_str(),
                    got_activity,
                    v.rule,
                    v.signature
                ));
            }
            if row.activity == "waiting_approval" {
                approvals += 1;
                approvals_hit += usize::from(got_activity == "waiting_approval");
            }
            if row.presence == "unmanaged" && got_presence == "managed" {
                false_managed += 1;
            }
            activity_pairs.push((row.activity.clone(), got_activity));
            presence_pairs.push((row.presence.clone(), got_presence));
        }
    }
    print_matrix("activity", &activity_pairs);
    print_matrix("presence", &presence_pairs);
    let accuracy = correct as f64 / total as f64;
    println!(
        "\nscreens judged: {total} (from {} labelled rows)\nactivity+presence+provider accuracy: {:.1}% ({correct}/{total})\napproval recall: {approvals_hit}/{approvals}\nfalse managed: {false_managed}",
        rows.len(),
        accuracy * 100.0
    );
    for m in &misses {
        println!("MISS {m}");
    }
    assert_eq!(
        false_managed, 0,
        "a pane without an agent was called managed"
    );
    assert_eq!(
        approvals_hit, approvals,
        "every approval screen must be classified waiting_approval"
    );
    assert!(
        accuracy >= 0.95,
        "accuracy {:.1}% below 95%",
        accuracy * 100.0
    );
}
