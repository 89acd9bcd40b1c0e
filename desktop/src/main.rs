//! `weft-desktop`: opens the app window on a running `weft daemon`'s replica
//! (attached), or on the app's own replica when no daemon runs (embedded).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;
use weft_core::Config;
use weft_core::NetConfig;
use weft_desktop::DesktopApp;
use weft_desktop::backend::Launch;

/// The Weft desktop app.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Where this app's replica lives (default: the platform data dir, e.g.
    /// ~/.local/share/weft-desktop).
    #[arg(long, env = "WEFT_DESKTOP_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The data dir whose running `weft daemon` the app attaches to
    /// (default: --data-dir when given, else the CLI's: $WEFT_DATA_DIR or
    /// the platform default, e.g. ~/.local/share/weft). When no daemon runs
    /// there, the app opens its own replica in --data-dir.
    #[arg(long, value_name = "DIR")]
    daemon_dir: Option<PathBuf>,
    /// A peer to dial at start and keep connected (a multiaddr ending in
    /// /p2p/<node id>, e.g. a local `weft daemon`); repeatable.
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Listen on loopback only and skip mDNS discovery (embedded only, as
    /// are --peer and --offline: attached, the daemon's network settings
    /// apply).
    #[arg(long)]
    local: bool,
    /// Open the replica with networking off.
    #[arg(long, conflicts_with_all = ["peers", "local"])]
    offline: bool,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wgpu=warn,naga=warn".into()),
        )
        .init();
    let args = Args::parse();
    let daemon_dir = match (&args.daemon_dir, &args.data_dir) {
        (Some(dir), _) | (None, Some(dir)) => Some(dir.clone()),
        (None, None) => match std::env::var_os("WEFT_DATA_DIR") {
            Some(dir) => Some(PathBuf::from(dir)),
            // No home: nothing to attach to; the embedded open says why.
            None => weft_core::config::default_data_dir().ok(),
        },
    };
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => directories::ProjectDirs::from("org", "weft", "weft-desktop")
            .map(|d| d.data_dir().to_path_buf())
            .context("no home directory found; pass --data-dir or set WEFT_DESKTOP_DATA_DIR")?,
    };
    let mut config = Config::with_data_dir(&data_dir);
    if !args.offline {
        let mut net = if args.local {
            NetConfig::local()
        } else {
            NetConfig::default()
        };
        for peer in &args.peers {
            net.peers.push(peer.parse().with_context(|| {
                format!("--peer {peer:?} is not a multiaddr; expected e.g. /ip4/127.0.0.1/tcp/4001/p2p/<node id>")
            })?);
        }
        config.network = Some(net);
    }
    tracing::info!(data_dir = %data_dir.display(), daemon_dir = ?daemon_dir, "starting weft-desktop");
    let launch = Launch { config, daemon_dir };
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Weft")
            .with_inner_size([1100.0, 720.0])
            .with_min_inner_size([640.0, 400.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Weft",
        options,
        Box::new(move |cc| Ok(Box::new(DesktopApp::new(&cc.egui_ctx, launch)?))),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "could not open the window ({e}); run it in a graphical session (X11, or Wayland with XWayland)"
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Args;

    #[test]
    fn arguments_are_consistent() {
        Args::command().debug_assert();
        let args = Args::try_parse_from([
            "weft-desktop",
            "--data-dir",
            "/tmp/x",
            "--peer",
            "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWx",
        ])
        .unwrap();
        assert_eq!(args.peers.len(), 1);
        assert!(Args::try_parse_from(["weft-desktop", "--offline", "--local"]).is_err());
        let args = Args::try_parse_from(["weft-desktop", "--daemon-dir", "/tmp/d"]).unwrap();
        assert_eq!(
            args.daemon_dir.as_deref(),
            Some(std::path::Path::new("/tmp/d"))
        );
    }
}
