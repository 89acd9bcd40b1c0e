//! `weft-desktop`: the desktop app arrives with the desktop issue; until then
//! this binary only says so.

fn main() {
    eprintln!("weft-desktop: the desktop app is not built yet");
    std::process::exit(2);
}
