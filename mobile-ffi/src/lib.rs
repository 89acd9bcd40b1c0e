//! `weft_ffi`: UniFFI bindings arrive with the mobile FFI issue. The crate
//! exists so the workspace layout is final from the start.
