//! `weft`: the daemon and CLI. The command set arrives with the daemon
//! issue; until then this binary only says so.

fn main() {
    eprintln!(
        "weft {}: the daemon and CLI are not built yet; run `cargo run --release -p weft-core --example quickstart` to try the replica",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
