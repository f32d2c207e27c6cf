//! The shipped binaries are lean: the release profile carries no debug info (with line
//! tables the installed `demitter` was 113 MiB; without, 20 MB), and the `profiling`
//! profile keeps them for perf and callgrind. CI checks the other half of their size: they
//! link no test crate (`cargo tree`, in `.ci/run`).

/// The lines of the manifest's `[NAME]` section.
fn section<'a>(manifest: &'a str, name: &str) -> Vec<&'a str> {
    manifest
        .lines()
        .skip_while(|line| line.trim() != name)
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// `key = value`, spaces aside.
fn setting(lines: &[&str], key: &str) -> Option<String> {
    lines.iter().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

#[test]
fn release_builds_carry_no_debug_info_and_profiling_builds_do() {
    let manifest = include_str!("../Cargo.toml");
    let release = section(manifest, "[profile.release]");
    assert_eq!(
        setting(&release, "debug").as_deref(),
        Some("false"),
        "[profile.release]: {release:?}"
    );
    assert_ne!(
        setting(&release, "strip").as_deref(),
        Some("\"none\""),
        "the standard library's debug info is stripped too"
    );
    let profiling = section(manifest, "[profile.profiling]");
    assert_eq!(
        setting(&profiling, "inherits").as_deref(),
        Some("\"release\""),
        "{profiling:?}"
    );
    assert_eq!(
        setting(&profiling, "debug").as_deref(),
        Some("1"),
        "{profiling:?}"
    );
}
