//! A child's known secret values never reach its captured output (issue 11): not the ring,
//! not the file, not a follower; a value split across two reads is caught, and a rotated
//! secret is redacted from the new incarnation's first line on.

mod api_support;

use api_support::{Instance, wait_until};

const OLD: &str = "old-token-4f9a1c";
const NEW: &str = "new-token-7b2e88";

/// Prints its token whole, then split across two writes a moment apart (two reads for the
/// pump), then waits.
const LEAKY: &str = r#"name: leaky
command: ["sh", "-c", "echo \"whole=$TOKEN\"; printf 'split=%s' \"${TOKEN%????????}\"; sleep 0.2; printf '%s end\n' \"${TOKEN#????????}\"; echo done; exec sleep 1000"]
environment: [{name: TOKEN, secret_ref: token}]
secrets: [{name: token, file: ../token}]
stop: {timeout: 2s}
"#;

#[test]
fn secrets_are_redacted_everywhere_including_split_and_rotated_ones() {
    let mut instance = Instance::prepare(&[("leaky.yaml", LEAKY)]);
    std::fs::write(instance.root.path().join("token"), format!("{OLD}\n")).expect("secret");
    instance.launch();
    let follower = instance.follow(&["logs", "-f", "-n", "0", "leaky"]);
    let first = instance.ready("leaky");
    let pid = first["pid"].as_i64().expect("pid");
    let logs = |instance: &Instance| instance.herder(&["logs", "leaky", "-n", "100"]).stdout;
    wait_until(
        "the child's lines in the ring",
        || instance.context(),
        || logs(&instance).contains("done").then_some(()),
    );
    let ring = logs(&instance);
    assert!(ring.contains("whole=[redacted]"), "{ring}");
    assert!(
        ring.contains("split=[redacted] end"),
        "split across reads: {ring}"
    );
    assert!(
        !ring.contains(&OLD[..8]) && !ring.contains(&OLD[8..]),
        "{ring}"
    );
    follower
        .stdout
        .wait_for("the follower to see the split line", |l| {
            l == "split=[redacted] end"
        });

    // Rotate the secret: the child is replaced, and the new value is redacted at once.
    std::fs::write(instance.root.path().join("token"), format!("{NEW}\n")).expect("rotate");
    instance.ready_with_new_pid("leaky", pid, "the rotated secret replaces the child");
    wait_until(
        "the new incarnation's lines",
        || instance.context(),
        || (logs(&instance).matches("done").count() >= 2).then_some(()),
    );
    let ring = logs(&instance);
    assert_eq!(ring.matches("whole=[redacted]").count(), 2, "{ring}");
    assert_eq!(ring.matches("split=[redacted] end").count(), 2, "{ring}");
    for leaked in [&OLD[..8], &OLD[8..], &NEW[..8], &NEW[8..]] {
        assert!(
            !ring.contains(leaked),
            "{leaked} leaked into the ring: {ring}"
        );
    }
    let file = wait_until(
        "both incarnations' lines in the log file",
        || instance.context(),
        || {
            let text = std::fs::read_to_string(instance.state_dir().join("logs/leaky.log")).ok()?;
            (text.matches("done").count() >= 2).then_some(text)
        },
    );
    for leaked in [OLD, NEW, &OLD[8..], &NEW[8..]] {
        assert!(
            !file.contains(leaked),
            "{leaked} leaked into the file: {file}"
        );
    }
    assert_eq!(file.matches("[redacted]").count(), 4, "{file}");
    follower
        .stdout
        .wait_for("the follower to see the new incarnation", |l| {
            l == "whole=[redacted]"
        });
    assert!(
        !follower.stdout.all().contains("token-"),
        "{}",
        follower.stdout.all()
    );
}
