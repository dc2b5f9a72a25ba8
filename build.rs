//! `sqlx::migrate!` embeds `migrations/` when the crate compiles; on stable
//! Rust it cannot tell Cargo to watch that folder, so this does: a new or
//! renamed migration rebuilds the crate instead of being silently left out.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
