fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc, so building Tern needs no system install.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().btree_map(".").compile_protos(
        &["tern/v1/tern.proto", "tern/internal/v1/raft.proto", "tern/internal/v1/changes.proto"],
        &["."],
    )?;
    println!("cargo:rerun-if-changed=tern");
    Ok(())
}
