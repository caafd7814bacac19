//! Gives librelaymap.so its soname: `librelaymap.so.MAJOR`, or
//! `librelaymap.so.0.MINOR` while the major version is 0 (each 0.x minor
//! release may break the ABI), as cargo-c does.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        let minor = env!("CARGO_PKG_VERSION_MINOR");
        let soname = if major == "0" {
            format!("librelaymap.so.0.{minor}")
        } else {
            format!("librelaymap.so.{major}")
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
