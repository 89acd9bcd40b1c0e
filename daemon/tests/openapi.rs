//! The served OpenAPI document against real tools: a validator of the
//! OpenAPI specification, and a bounded Schemathesis run that fuzzes the
//! API from the document (no 5xx, no schema-valid request rejected, no
//! schema-violating request accepted). Both are Python packages, installed
//! once into venvs under the cargo target dir; the test fails, saying why,
//! when Python or PyPI cannot be reached.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TOKEN, call, serve, serve_joining_within};
use hyper::Method;
use serde_json::{Value, json};

/// Pinned so a new release cannot change the verdict under the test.
const VALIDATOR: &str = "openapi-spec-validator==0.9.0";
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

fn bin(venv: &Path, tool: &str) -> PathBuf {
    match cfg!(windows) {
        true => venv.join("Scripts").join(format!("{tool}.exe")),
        false => venv.join("bin").join(tool),
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; this test needs python3 on PATH"))
}

/// A venv named `name` under the target dir with `package` installed:
/// made on first use, reused afterwards.
fn venv(name: &str, package: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let marker = dir.join("weft-installed");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == package) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let made = run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
    assert!(
        made.status.success(),
        "python3 -m venv {} failed (install python3 with venv): {}",
        dir.display(),
        String::from_utf8_lossy(&made.stderr)
    );
    let pip = run(Command::new(bin(&dir, "pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        package,
    ]));
    assert!(
        pip.status.success(),
        "pip install {package} failed; this test needs PyPI: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
    std::fs::write(&marker, package).unwrap();
    dir
}

fn validate(venv: &Path, doc: &Value) -> Output {
    let file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(file.path(), serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    run(Command::new(bin(venv, "openapi-spec-validator")).arg(file.path()))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_document_is_valid_openapi() {
    let s = serve().await;
    let (status, doc) = call(&s, Method::GET, "/v1/openapi.json", None).await;
    assert!(status.is_success(), "{doc}");
    let venv = tokio::task::spawn_blocking(|| venv("venv-openapi-validator", VALIDATOR))
        .await
        .unwrap();
    let out = validate(&venv, &doc);
    assert!(
        out.status.success(),
        "the OpenAPI document is invalid:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator catches what this document once had: a response
    // without its required description.
    let mut broken = doc.clone();
    let responses = &mut broken["paths"]["/v1/id"]["get"]["responses"]["401"];
    responses.as_object_mut().unwrap().remove("description");
    assert!(!validate(&venv, &broken).status.success());
    // Bodies that must be objects say so.
    for name in [
        "CreateSpace",
        "InviteRequest",
        "JoinRequest",
        "ConnectRequest",
        "SqlRequest",
    ] {
        assert_eq!(
            doc["components"]["schemas"][name]["type"],
            json!("object"),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing() {
    // A join of a token the fuzzer found waits for an inviter that may
    // never answer; the fuzzer's requests time out after 10 s.
    let s = serve_joining_within(std::time::Duration::from_secs(2)).await;
    let venv = tokio::task::spawn_blocking(|| venv("venv-schemathesis", SCHEMATHESIS))
        .await
        .unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let url = format!("http://{}/v1/openapi.json", s.addr);
    let mut st = Command::new(bin(&venv, "st"));
    st.arg("--config-file")
        .arg(&config)
        .args(["run", &url, "--checks", "all", "--max-examples", "25"])
        .args(["--seed", "1", "--generation-database", ":memory:"])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        // A stream never ends; dialing peers waits on the network.
        .args(["--exclude-path", "/v1/events"])
        .args([
            "--exclude-path",
            "/v1/spaces/{space}/collections/{collection}/observe",
        ])
        .args(["--exclude-operation-id", "connect"])
        .env("NO_COLOR", "1")
        // It keeps a cache in its working directory: not the source tree.
        .current_dir(env!("CARGO_TARGET_TMPDIR"));
    // Blocking here would stall the runtime serving the API.
    let out = tokio::task::spawn_blocking(move || run(&mut st))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
