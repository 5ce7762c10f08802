//! End-to-end tests of the `gym` binary: bad input gets a clear error that
//! names what exists, and trajectory files are reproducible byte for byte.

use std::process::Command;

fn gym(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gym")).args(args).output().expect("gym runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn list_shows_envs_options_and_policies() {
    let (ok, out, _) = gym(&["list"]);
    assert!(ok);
    for word in ["2048", "sudoku", "math", "vision-qa", "random", "oracle", "replay:FILE", "--opt"] {
        assert!(out.contains(word), "`gym list` lacks {word}:\n{out}");
    }
}

#[test]
fn unknown_env_lists_the_valid_ones() {
    let (ok, _, err) = gym(&["run", "chess", "--episodes", "1"]);
    assert!(!ok);
    assert!(err.contains("unknown env `chess`") && err.contains("2048") && err.contains("sudoku"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_policy_lists_the_valid_ones() {
    let (ok, _, err) = gym(&["run", "math", "--policy", "gpt-7"]);
    assert!(!ok);
    assert!(err.contains("gpt-7") && err.contains("random") && err.contains("oracle"), "{err}");
}

#[test]
fn unknown_and_out_of_range_options_are_clear_errors() {
    let (ok, _, err) = gym(&["run", "sudoku", "--opt", "colour=blue"]);
    assert!(!ok);
    assert!(err.contains("colour") && err.contains("size"), "{err}");
    let (ok, _, err) = gym(&["run", "2048", "--opt", "size=99"]);
    assert!(!ok);
    assert!(err.contains("size") && err.contains("99"), "{err}");
    let (ok, _, err) = gym(&["run", "2048", "--opt", "size"]);
    assert!(!ok);
    assert!(err.contains("name=value"), "{err}");
}

#[test]
fn unreadable_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let (ok, _, err) = gym(&["run", "math", "--policy", &format!("replay:{}", missing.display())]);
    assert!(!ok);
    assert!(err.contains("missing.jsonl"), "{err}");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"seed\": 0, \"completion\": \"x\"}\nnot json\n").unwrap();
    let (ok, _, err) = gym(&["run", "math", "--policy", &format!("replay:{}", bad.display())]);
    assert!(!ok);
    assert!(err.contains("bad.jsonl") && err.contains("line 2"), "{err}");
    let (ok, _, err) = gym(&["show", &bad.display().to_string()]);
    assert!(!ok);
    assert!(err.contains("bad.jsonl") && err.contains("line 1"), "{err}");
}

#[test]
fn trajectory_files_are_identical_for_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    for env in ["2048", "sudoku", "math", "vision-qa"] {
        let mut files = Vec::new();
        for t in ["1", "2"] {
            let f = dir.path().join(format!("{env}-{t}.jsonl"));
            let (ok, out, err) = gym(&[
                "run",
                env,
                "--policy",
                "random",
                "--episodes",
                "6",
                "--seed",
                "3",
                "--threads",
                t,
                "--out",
                f.to_str().unwrap(),
            ]);
            assert!(ok, "{err}");
            assert!(out.contains("mean reward") && out.contains("success rate") && out.contains("steps/s"), "{out}");
            files.push(std::fs::read(&f).unwrap());
        }
        assert!(!files[0].is_empty());
        assert_eq!(files[0], files[1], "{env}: --threads 1 and 2 differ");
    }
}

#[test]
fn replay_and_show_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.jsonl");
    let (ok, _, err) = gym(&["run", "math", "--policy", "oracle", "--episodes", "3", "--out", f.to_str().unwrap()]);
    assert!(ok, "{err}");
    let g = dir.path().join("r.jsonl");
    let replay = format!("replay:{}", f.display());
    let (ok, _, err) = gym(&["run", "math", "--policy", &replay, "--episodes", "3", "--out", g.to_str().unwrap()]);
    assert!(ok, "{err}");
    let a = std::fs::read_to_string(&f).unwrap();
    let b = std::fs::read_to_string(&g).unwrap();
    // Same completions, same rewards; only the policy name differs.
    assert_eq!(a.replace("\"policy\":\"oracle\"", "\"policy\":\"replay\""), b);
    let (ok, out, _) = gym(&["show", f.to_str().unwrap()]);
    assert!(ok);
    assert!(out.contains("correctness") && out.contains("success true"), "{out}");
    // A replay file missing a key is a clear error naming the key.
    let (ok, _, err) = gym(&["run", "math", "--policy", &replay, "--episodes", "4"]);
    assert!(!ok);
    assert!(err.contains("seed 3"), "{err}");
}

#[test]
fn empty_and_malformed_replies_are_penalties_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.jsonl");
    let lines: Vec<String> = ["", "   ", "<answer>", "\u{0}\u{1}garbage", "<answer>999999999999999999999999</answer>"]
        .iter()
        .enumerate()
        .map(|(i, c)| serde_json::json!({"seed": i, "completion": c}).to_string())
        .collect();
    std::fs::write(&f, lines.join("\n")).unwrap();
    for env in ["math", "sudoku", "vision-qa"] {
        let out = dir.path().join(format!("{env}.jsonl"));
        let (ok, _, err) = gym(&[
            "run",
            env,
            "--policy",
            &format!("replay:{}", f.display()),
            "--episodes",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{env}: {err}");
        let text = std::fs::read_to_string(&out).unwrap();
        let (episodes, summary) = text.trim_end().rsplit_once('\n').unwrap();
        assert!(summary.starts_with("{\"summary\""), "{summary}");
        for line in episodes.lines() {
            let e: envs::EpisodeRecord = serde_json::from_str(line).unwrap();
            assert!(!e.success, "{env}: malformed reply counted as success");
            assert!(e.total_reward < 0.5, "{env}: malformed reply earned {}", e.total_reward);
        }
    }
}

#[test]
fn bench_model_takes_a_model_folder_and_reports_the_bandwidth_bound() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/tests/fixtures/tiny-qwen2");
    let args = ["bench", "model", "--model", fixture, "--device", "cpu", "--prompt-len", "8", "--new-tokens", "4"];
    let (ok, out, err) = gym(&[&args[..], &["--group", "2", "--reps", "1", "--bandwidth-gbs", "20"]].concat());
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["weights"], "real");
    let frac = v["fraction_of_bandwidth_bound"].as_f64().unwrap();
    assert!(frac > 0.0 && v["decode_bytes_per_step"].as_f64().unwrap() > 0.0, "{v}");
    let (ok, _, err) = gym(&["bench", "model", "--model", "/nonexistent/model", "--device", "cpu"]);
    assert!(!ok && err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn interrupted_run_keeps_every_finished_episode_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(["run", "2048", "--episodes", "1000000000", "--threads", "2", "--out", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted") && stderr.contains("were kept"), "{stderr}");
    let text = std::fs::read_to_string(&f).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["interrupted"], true, "{last}");
    let n = lines.len() - 1;
    assert!(n > 0, "no episode finished in 3 s");
    assert_eq!(last["summary"]["episodes"], n);
    // Episodes are complete and in order: the same bytes as a run of exactly n.
    let g = dir.path().join("n.jsonl");
    let (ok, _, err) =
        gym(&["run", "2048", "--episodes", &n.to_string(), "--threads", "1", "--out", g.to_str().unwrap()]);
    assert!(ok, "{err}");
    let whole = std::fs::read_to_string(&g).unwrap();
    let whole: Vec<&str> = whole.lines().collect();
    assert_eq!(whole[..n], lines[..n]);
    assert_eq!(whole[n].replace("\"interrupted\":false", "\"interrupted\":true"), lines[n]);
    // `gym show` reads the file (the summary line is skipped).
    let (ok, shown, err) = gym(&["show", f.to_str().unwrap(), "--episode", "0", "--max-steps", "1"]);
    assert!(ok && shown.contains("seed 0"), "{err}");
}

#[test]
fn absurd_counts_and_missing_folders_fail_before_any_work() {
    let (ok, _, err) = gym(&["run", "2048", "--episodes", "18446744073709551615"]);
    assert!(!ok);
    assert!(err.contains("--episodes") && err.contains("too large") && !err.contains("panicked"), "{err}");
    let (ok, _, err) = gym(&["run", "2048", "--group-size", "100000000"]);
    assert!(!ok && err.contains("--group-size"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/folder/t.jsonl");
    let t = std::time::Instant::now();
    let (ok, _, err) = gym(&["run", "2048", "--episodes", "100000", "--out", missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("does not exist") && err.contains("no/such/folder"), "{err}");
    // 100,000 episodes take minutes; the error came before them.
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
}

fn play(args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gym"))
        .arg("play")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into()
}

#[test]
fn play_takes_arrow_keys_and_multi_line_grids() {
    // A line-mode terminal passes an arrow key through as ESC [ A.
    let out = play(&["2048", "--seed", "1"], "\u{1b}[A\n\u{1b}OD\n");
    assert!(!out.contains("is not a move") && !out.contains("reason:"), "{out}");
    assert_eq!(out.matches("reward ").count(), 2, "{out}");
    // A 4×4 Sudoku answered row by row: one reply of four lines.
    let out = play(&["sudoku", "--opt", "size=4"], "1234\n3412\n\n2143\n4321\n");
    let format = out.split("format").nth(1).and_then(|rest| rest.lines().next()).unwrap_or_default();
    assert!(format.contains("+1.000"), "the grid was not read whole: {out}");
}
