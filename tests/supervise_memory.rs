//! Giving memory back after a manifest set was loaded: malloc's free pages and the pages of
//! herder's own code, which must come back transparently when they run again.

/// Resident KiB of this executable's code mapping, from `/proc/self/smaps`.
fn resident_code_kib() -> u64 {
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut in_code = false;
    let mut total = 0;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            in_code = fields.get(1) == Some(&"r-xp")
                && fields.get(5).map(std::path::Path::new) == Some(exe.as_path());
        } else if in_code && fields.first() == Some(&"Rss:") {
            total += fields[1].parse::<u64>().unwrap();
        }
    }
    total
}

#[test]
fn code_pages_are_released_and_come_back_on_use() {
    // Touch a good deal of code first: the JSON Schema validator and the YAML loader.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web.yaml"),
        "name: web\ncommand: [\"sleep\", \"1\"]\n",
    )
    .unwrap();
    let (desired, diagnostics) = herder::manifest::load_dir(dir.path()).unwrap();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let before = resident_code_kib();
    assert!(before > 0, "the code mapping is resident");

    herder::supervise::os::release_free_memory();
    let after = resident_code_kib();
    assert!(
        after < before,
        "code pages released: {before} KiB -> {after} KiB"
    );

    // The released code runs again, with the same results.
    let (again, _) = herder::manifest::load_dir(dir.path()).unwrap();
    assert_eq!(
        again.children.keys().collect::<Vec<_>>(),
        desired.children.keys().collect::<Vec<_>>()
    );
}
