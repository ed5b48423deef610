//! placeholder while dependencies build
#[test]
fn placeholder() {}
