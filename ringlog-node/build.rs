//! Link settings for a Node addon (the N-API symbols resolve inside the node process).
fn main() {
    napi_build::setup();
}
