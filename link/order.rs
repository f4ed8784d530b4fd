// The release link's function order (link/README.md), shared by build.rs and
// relay-server/build.rs, which `include!` it.

/// Asks the linker to lay out `binary`'s functions in the order of `<dir>/<binary>.order` (`dir`
/// relative to the package, the file written by benches/order.sh), when the link is a release
/// one by rust-lld, the linker Rust uses for x86_64 Linux from 1.90 on; any other link is left
/// as it was. `HOOKS_LINK_ORDER=0` turns it off.
fn link_order(binary: &str, dir: &str) {
    let package = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = std::path::Path::new(&package)
        .join(dir)
        .join(format!("{binary}.order"));
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=HOOKS_LINK_ORDER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let other_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || ["linker", "link-self-contained", "fuse-ld"]
            .iter()
            .any(|flag| flags.contains(flag));
    if var("HOOKS_LINK_ORDER") == "0"
        || var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        || other_linker
        || !rustc_at_least(1, 90)
        || !order.is_file()
    {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin={binary}=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    // Symbols of another toolchain or Cargo.lock are skipped, silently.
    println!("cargo:rustc-link-arg-bin={binary}=-Wl,--no-warn-symbol-ordering");
}

/// Whether the compiler cargo runs (`$RUSTC -V`: "rustc 1.95.0 (…)") is `major.minor` or newer.
fn rustc_at_least(major: u32, minor: u32) -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("-V").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0)) >= (major, minor)
}
