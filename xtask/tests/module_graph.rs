//! The workspace's own module graph has no cycles (`xtask::module_graph`).

#[test]
fn no_crate_of_the_workspace_has_a_module_cycle() {
    xtask::module_graph::check_workspace(&xtask::repo_root()).unwrap();
}
