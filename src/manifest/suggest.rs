//! "Did you mean …?": the one ranking of close spellings, used for unknown manifest keys and
//! enum values, undeclared secrets and dependencies, and unknown child names in the API.

/// How many suggestions [`suggestions`] returns at most.
pub const MAX_SUGGESTIONS: usize = 3;

/// The candidates most like `input`, best first, at most [`MAX_SUGGESTIONS`]: candidates
/// that extend it (`api` → `api-0`, the replicas of a child) and close spellings (a few
/// edits, a swap, or a shared stem by Jaro-Winkler). Ties keep alphabetical order.
pub fn suggestions<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .filter(|candidate| *candidate != input)
        .filter_map(|candidate| {
            let prefix = !input.is_empty() && candidate.starts_with(input);
            let edits = strsim::damerau_levenshtein(input, candidate);
            let similar = strsim::jaro_winkler(input, candidate);
            let close = prefix || edits <= (input.chars().count() / 3).max(1) || similar >= 0.8;
            let score = if prefix {
                1.0
            } else {
                similar.max(strsim::normalized_damerau_levenshtein(input, candidate))
            };
            close.then_some((score, candidate))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, candidate)| candidate)
        .collect()
}

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    suggestions(input, candidates).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_matches_only() {
        assert_eq!(
            did_you_mean("restart_polcy", ["restart", "name"]),
            Some("restart")
        );
        assert_eq!(did_you_mean("zzz", ["restart", "name"]), None);
        assert_eq!(did_you_mean("stpo", ["stop", "start"]), Some("stop"));
    }

    #[test]
    fn replicas_and_typos_rank_first() {
        let known = ["api-0", "api-1", "web", "worker", "db"];
        assert_eq!(suggestions("wbe", known), ["web"]);
        assert_eq!(suggestions("api", known), ["api-0", "api-1"]);
        assert!(suggestions("zzzzzz", known).is_empty());
    }
}
