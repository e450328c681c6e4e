//! End-to-end: `xray-gan synth` through the real binary, read back by the MURA parser; bad flags
//! and bad output folders give exit code 2 and a message naming the problem.

use std::process::Command;

fn xray_gan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xray-gan"))
}

#[test]
fn synth_writes_a_mura_tree_the_parser_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = xray_gan()
        .args(["synth", "--out"])
        .arg(dir.path())
        .args([
            "--seed",
            "4",
            "--studies-per-part",
            "3",
            "--parts",
            "wrist,elbow",
            "--size",
            "64",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let table = gan_data::read_mura(dir.path(), gan_data::Listing::Walk).unwrap();
    assert!(
        stdout.contains(&format!("wrote {} radiographs", table.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains("WRIST") && stdout.contains("ELBOW"),
        "{stdout}"
    );
    assert_eq!(
        table.clone().groups(&["WRIST".into()]).len()
            + table.clone().groups(&["ELBOW".into()]).len(),
        table.len()
    );
    let kinds =
        gan_data::synth::read_anomaly_kinds(&dir.path().join("MURA-v1.1/synth_anomalies.csv"))
            .unwrap();
    assert_eq!(kinds.len(), table.len());
    let png = image::open(&table.samples[0].path).unwrap();
    assert_eq!(png.height(), 64);

    // running again does not overwrite: exit code 2 and the path in the message
    let again = xray_gan()
        .args(["synth", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn bad_flags_exit_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = xray_gan()
        .args(["synth", "--out"])
        .arg(dir.path())
        .args(["--parts", "knee"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown body part \"knee\""));
    let out = xray_gan().args(["synth"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "missing --out");
    let out = xray_gan().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
