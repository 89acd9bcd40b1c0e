//! Generates bindings from the built `libweft_ffi` with this package's
//! `uniffi-bindgen`, checks the Kotlin and Swift sources, and runs the
//! Python end-to-end test (`mobile-ffi/tests/test_ffi.py`) against them.
//!
//! The test lives here rather than in `weft-ffi` because only this package
//! can name the bindgen binary (`CARGO_BIN_EXE_*`); its dev-dependency on
//! `weft-ffi` makes cargo build the cdylib before the test runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous for a loaded 2-core CI machine; the script's own waits are 30 s.
const PYTHON_DEADLINE: Duration = Duration::from_secs(300);

/// The cdylib cargo built for this test run. Dependencies land in `deps/`
/// next to the test binary; workspace builds also copy them one level up.
fn library() -> PathBuf {
    let name = format!(
        "{}weft_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("test binary has a directory");
    let candidates = [deps.join(&name), deps.join("..").join(&name)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found; looked at {candidates:?}"))
        .clone()
}

fn generate(library: &Path, language: &str, out: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--library"])
        .arg(library)
        .args(["--language", language, "--no-format", "--out-dir"])
        .arg(out)
        .output()
        .expect("run uniffi-bindgen");
    assert!(
        output.status.success(),
        "uniffi-bindgen failed for {language}:\n{}",
        describe(&output)
    );
}

fn describe(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A generated file that must exist, be non-empty and expose the node.
fn check_source(path: &Path) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("generated {} is missing: {e}", path.display()));
    assert!(
        text.contains("WeftNode") && text.contains("pauseNetwork"),
        "{} does not declare WeftNode with pauseNetwork ({} bytes)",
        path.display(),
        text.len()
    );
}

#[test]
fn kotlin_and_swift_bindings_are_generated() {
    let lib = library();
    let out = tempfile::tempdir().unwrap();
    generate(&lib, "kotlin", out.path());
    generate(&lib, "swift", out.path());
    check_source(&out.path().join("uniffi/weft_ffi/weft_ffi.kt"));
    check_source(&out.path().join("weft_ffi.swift"));
    for support in ["weft_ffiFFI.h", "weft_ffiFFI.modulemap"] {
        let len = std::fs::metadata(out.path().join(support))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "generated {support} is missing or empty");
    }
}

/// Members the generated runtime gives every Kotlin object (`Disposable`,
/// `AutoCloseable`, UniFFI's pointer helpers, `java.lang.Object`): an
/// exported method of the same name does not compile (a `suspend fun
/// close()` clashes with `AutoCloseable.close()`).
const KOTLIN_RUNTIME: &[&str] = &[
    "close",
    "destroy",
    "uniffiClonePointer",
    "callWithPointer",
    "equals",
    "hashCode",
    "toString",
    "finalize",
    "getClass",
    "notify",
    "notifyAll",
    "wait",
    "clone",
];

/// Members the generated runtime gives every Swift object.
const SWIFT_RUNTIME: &[&str] = &["uniffiClonePointer", "deinit", "init"];

/// Names of the functions declared in the body of `header` (an interface
/// or protocol the bindings generate for each object's exported methods).
fn declared(text: &str, header: &str, keyword: &str) -> Vec<String> {
    let Some(start) = text.find(header) else {
        return Vec::new();
    };
    let body = &text[start..];
    let end = body.find("\n}").unwrap_or(body.len());
    body[..end]
        .split(keyword)
        .skip(1)
        .filter_map(|rest| {
            // Kotlin quotes every name in backticks.
            let name: String = rest
                .trim_start_matches('`')
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Exported methods of every object whose name is one of `runtime`, as
/// `Object.method`; `objects` are found by their interface `pattern`.
fn collisions(text: &str, pattern: (&str, &str), keyword: &str, runtime: &[&str]) -> Vec<String> {
    let (prefix, suffix) = pattern;
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        rest = after;
        let Some(object) = name.strip_suffix(suffix) else {
            continue;
        };
        let header = format!("{prefix}{name}");
        for method in declared(text, &header, keyword) {
            if runtime.contains(&method.as_str()) {
                found.push(format!("{object}.{method}"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn no_exported_method_collides_with_the_generated_runtime() {
    let lib = library();
    let out = tempfile::tempdir().unwrap();
    generate(&lib, "kotlin", out.path());
    generate(&lib, "swift", out.path());
    let kotlin = std::fs::read_to_string(out.path().join("uniffi/weft_ffi/weft_ffi.kt")).unwrap();
    let swift = std::fs::read_to_string(out.path().join("weft_ffi.swift")).unwrap();
    // The check itself: it finds the objects and their methods.
    assert!(
        declared(&kotlin, "interface WeftNodeInterface", "fun ").contains(&"put".to_owned()),
        "the Kotlin interface of WeftNode was not found"
    );
    assert!(
        declared(&swift, "protocol WeftNodeProtocol", "func ").contains(&"put".to_owned()),
        "the Swift protocol of WeftNode was not found"
    );
    let kotlin = collisions(&kotlin, ("interface ", "Interface"), "fun ", KOTLIN_RUNTIME);
    let swift = collisions(&swift, ("protocol ", "Protocol"), "func ", SWIFT_RUNTIME);
    assert!(
        kotlin.is_empty() && swift.is_empty(),
        "exported methods collide with members the bindings' runtime defines; rename them: Kotlin {kotlin:?}, Swift {swift:?}"
    );
}

#[test]
fn python_app_syncs_two_nodes_through_the_bindings() {
    let lib = library();
    let out = tempfile::tempdir().unwrap();
    generate(&lib, "python", out.path());
    // The generated module loads the library from its own directory.
    let beside = out.path().join(lib.file_name().expect("library file name"));
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(&lib, &beside).is_ok();
    #[cfg(not(unix))]
    let linked = false;
    if !linked {
        std::fs::copy(&lib, &beside).expect("copy the library next to weft_ffi.py");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/test_ffi.py");
    let child = Command::new("python3")
        .arg(&script)
        .env("PYTHONPATH", out.path())
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): install Python 3 (3.8 or later) to run the FFI test")
        });
    let output = wait_with_deadline(child, PYTHON_DEADLINE);
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("all Python FFI checks passed"),
        "the script exited 0 without finishing:\n{}",
        describe(&output)
    );
}

/// Waits for the child, killing it at the deadline so a hung script fails
/// the test with its output instead of hanging CI.
fn wait_with_deadline(mut child: std::process::Child, deadline: Duration) -> Output {
    // Pipes are drained on threads so a chatty child cannot fill them and stall.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python3") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let output = Output {
                status: child.wait().expect("reap python3"),
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            };
            panic!(
                "python3 ran longer than {deadline:?}; killed:\n{}",
                describe(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}
