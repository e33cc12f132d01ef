//! Crash-safe training: a run killed with SIGKILL at random moments (mid-epoch, and once
//! while a checkpoint is being written, when that moment can be caught) resumes from its
//! last complete checkpoint; no file of the run folder is ever half-written, and no kill
//! loses more than the epoch in progress.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const EPOCHS: usize = 4;

fn start(csv: &Path, run: &Path, resume: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrite"));
    #[rustfmt::skip]
    cmd.args([
        "train", "--fer2013", csv.to_str().unwrap(), "--limit", "512", "--val-limit", "200",
        "--epochs", &EPOCHS.to_string(), "--batch-size", "32", "--seed", "3",
    ]);
    cmd.args([
        if resume { "--resume" } else { "--out" },
        run.to_str().unwrap(),
    ]);
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Epochs recorded in metrics.jsonl; every line must be a whole JSON record.
fn epochs_recorded(run: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(run.join("metrics.jsonl")) else {
        return 0;
    };
    for (i, line) in text.lines().enumerate() {
        let m: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("metrics.jsonl line {}: {e}: {line}", i + 1));
        assert_eq!(m["epoch"], i + 1);
    }
    text.lines().count()
}

/// Every file of the run folder, other than a killed write's temporary file, is whole.
fn check_intact(run: &Path) {
    for entry in std::fs::read_dir(run).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        match name.as_str() {
            "config.json" => {
                serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap())
                    .expect("config.json parses");
            }
            "metrics.jsonl" => {
                epochs_recorded(run);
            }
            "best.safetensors" => {
                ferrite_ok(&["info", "--model", path.to_str().unwrap()]);
            }
            "curves.png" => {
                image::open(&path).expect("curves.png decodes");
            }
            "last.ckpt" => {} // checked by resuming from it
            other if other.starts_with(ferrite_data::atomic::TEMP_PREFIX) => {}
            other => panic!("unexpected file {other} in the run folder"),
        }
    }
}

fn kill(child: &mut Child) {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
}

#[test]
fn sigkill_at_random_moments_loses_at_most_the_epoch_in_progress() {
    let Some(csv) = fer2013() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // A fixed pseudo-random sequence of kill delays, 0.5-5 s after each (re)start (loading
    // FER2013 takes ~2 s of that).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut delays = std::iter::from_fn(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Some(Duration::from_millis(500 + state % 4500))
    });
    let mut kills = 0;
    let mut caught_writing = false;
    let mut finished = false;
    for attempt in 0..12 {
        let resume = run.join("last.ckpt").exists();
        let before = epochs_recorded(&run);
        let mut child = start(&csv, &run, resume);
        // Alternate: a kill at a random moment, or at the first temporary file seen (a
        // checkpoint or model being written).
        let deadline = Instant::now() + delays.next().unwrap();
        let hunt_write = attempt % 2 == 1;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let writing = hunt_write
                && std::fs::read_dir(&run).is_ok_and(|d| {
                    d.flatten().any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(ferrite_data::atomic::TEMP_PREFIX)
                    })
                });
            if writing || (!hunt_write && Instant::now() >= deadline) {
                kill(&mut child);
                kills += 1;
                caught_writing |= writing;
                break;
            }
            std::thread::sleep(Duration::from_millis(if hunt_write { 1 } else { 20 }));
        }
        let status = child.wait().unwrap();
        if run.exists() {
            check_intact(&run);
        }
        let after = epochs_recorded(&run);
        assert!(after >= before, "epochs went from {before} to {after}");
        if status.success() {
            finished = true;
            break;
        }
        if kills >= 8 {
            break;
        }
    }
    // Whatever happened, the run now completes from its checkpoint.
    if !finished {
        let out = start(&csv, &run, run.join("last.ckpt").exists())
            .wait_with_output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("{kills} kills, one during a write: {caught_writing}");
    assert!(kills >= 4, "only {kills} kills: the run ended too soon");
    check_intact(&run);
    assert_eq!(epochs_recorded(&run), EPOCHS);
    let leftovers = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(ferrite_data::atomic::TEMP_PREFIX)
        })
        .count();
    assert_eq!(leftovers, 0, "temporary files left after the run resumed");
}
