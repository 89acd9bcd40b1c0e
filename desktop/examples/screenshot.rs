//! Renders docs/desktop.png: the app with real content, headless through
//! egui_kittest's wgpu renderer (Mesa llvmpipe works without a GPU).
//!
//! cargo run -p weft-desktop --features screenshot --example screenshot
//!
//! A seeded replica (a shared space with notes and documents) is opened in
//! the app, and a second, windowless node joins the space and connects, so
//! the peers indicator and sync state show a real peer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use serde_json::json;
use weft_core::NetConfig;
use weft_core::{Config, DocKey, Node, Role};
use weft_desktop::DesktopApp;

const NOTES: &[(&str, &str, &str)] = &[
    (
        "trip",
        "Trip to Lisbon",
        "Flights: Thu 08:40 from Gate B12\nHotel: Rua das Flores 12, check-in after 15:00\n\n\
         To pack:\n- adapters (type F)\n- sunscreen\n- the good camera\n\n\
         Ideas: Time Out Market, tram 28 early in the morning, sunset at the \
         Miradouro da Senhora do Monte.",
    ),
    (
        "groceries",
        "Groceries",
        "eggs, oat milk, basil, lemons, coffee beans",
    ),
    (
        "books",
        "Books to read",
        "The Dispossessed\nPiranesi\nThe Overstory",
    ),
];

fn node(dir: &std::path::Path) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.network = Some(NetConfig::local());
    config
}

fn main() {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/desktop.png");
    let dir = tempfile::tempdir().expect("temp dir");
    let (dir_a, dir_b) = (dir.path().join("laptop"), dir.path().join("phone"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    // Seed the laptop's replica, and let the phone join its space.
    let (space, phone) = rt.block_on(async {
        let a = Node::open(node(&dir_a)).await.expect("open laptop");
        let space = a
            .space_create("Household")
            .await
            .expect("space")
            .to_string();
        for (i, (id, title, body)) in NOTES.iter().enumerate() {
            let key = DocKey::new(&space, "notes", *id).unwrap();
            let updated = 1_795_000_000_000_i64 - i as i64 * 3_600_000;
            a.put(
                &key,
                json!({"title": title, "body": body, "updated": updated}),
            )
            .await
            .unwrap();
        }
        for (id, title, done) in [
            ("t1", "Renew passports", false),
            ("t2", "Book the flat", true),
        ] {
            let key = DocKey::new(&space, "tasks", id).unwrap();
            a.put(
                &key,
                json!({"title": title, "done": done, "tags": ["trip"]}),
            )
            .await
            .unwrap();
        }
        let token = a
            .space_invite(Some(&space), Role::Writer, Duration::from_secs(3600), None)
            .await
            .unwrap();
        a.close().await.unwrap();
        let phone = Node::open(node(&dir_b)).await.expect("open phone");
        phone.space_join(&token).await.expect("join");
        (space, phone)
    });

    let config = node(&dir_a);
    let mut ui = Harness::builder()
        .with_size(egui::Vec2::new(1100.0, 680.0))
        .wgpu()
        .build_eframe(move |cc| DesktopApp::new(&cc.egui_ctx, config).expect("backend"));
    let wait =
        |ui: &mut Harness<'_, DesktopApp>, what: &str, done: &dyn Fn(&DesktopApp) -> bool| {
            let start = Instant::now();
            while !done(ui.state()) {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "timed out waiting for {what}"
                );
                ui.step();
                std::thread::sleep(Duration::from_millis(20));
            }
        };
    wait(&mut ui, "the replica", &|app| app.state.node_id.is_some());
    ui.state_mut().state.select_space(space.clone());
    wait(&mut ui, "a listen address", &|app| {
        app.state
            .net
            .as_ref()
            .is_some_and(|n| !n.listen_addrs.is_empty())
    });
    let addr = ui.state().state.net.as_ref().unwrap().listen_addrs[0].clone();
    rt.block_on(phone.connect(&addr)).expect("phone connects");
    wait(&mut ui, "the phone to be connected and synced", &|app| {
        let s = &app.state;
        s.net
            .as_ref()
            .is_some_and(|n| n.peers_connected == 1 && n.pending == 0)
            && s.spaces.iter().all(|sp| sp.role.is_some())
            && s.notes.len() == NOTES.len()
    });
    ui.get_by_label("Trip to Lisbon").click();
    wait(&mut ui, "the note", &|app| app.state.note.is_some());
    ui.remove_cursor();
    for _ in 0..5 {
        ui.step();
    }
    let image = ui.render().expect("render with wgpu");
    image.save(&out).expect("write the PNG");
    println!("wrote {}", out.display());
    drop(ui);
    rt.block_on(phone.close()).unwrap();
}
