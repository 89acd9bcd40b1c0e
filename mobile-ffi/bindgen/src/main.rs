//! `uniffi-bindgen`: generates Kotlin, Swift or Python bindings from a built
//! `libweft_ffi` (`generate --library PATH --language LANG --out-dir DIR`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
