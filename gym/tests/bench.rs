//! `gym bench`: the policy benchmark (suite, statistics, JSON/Markdown/SVG
//! outputs, compare) and the server load test against an in-process server.

mod common;

use std::process::Command;

use common::*;
use gym::bench::policy::{compare_markdown, markdown, run_suite, write_outputs, Report, Suite};
use gym::bench::server::{run_async, EpisodeMode, ServerBenchArgs};
use serve::ServerConfig;

const SUITE: &str = r#"
name = "test"
version = 3
[[env]]
id = "guess"
seed_start = 50
episodes = 60
options = { steps = 2 }
"#;

fn strip_timing(mut r: Report) -> Report {
    for row in &mut r.rows {
        row.episodes_per_s = 0.0;
        row.policy_ms_per_step = 0.0;
    }
    r
}

#[test]
fn policy_bench_rows_intervals_and_outputs() {
    let suite = Suite::parse(SUITE).unwrap();
    let reg = test_registry();
    let r = run_suite(&reg, &suite, "random", &Default::default(), &["random".into(), "oracle".into()], 2, 0).unwrap();
    assert_eq!((r.suite.as_str(), r.suite_version, r.policy.as_str()), ("test", 3, "random"));
    assert_eq!(r.rows.len(), 2, "the policy plus one distinct baseline");
    let (random, oracle) = (&r.rows[0], &r.rows[1]);
    assert!(!random.baseline && oracle.baseline);
    assert_eq!(oracle.success_rate, 1.0);
    assert_eq!(oracle.mean_reward, 2.0);
    assert_eq!(oracle.reward_ci, [2.0, 2.0], "no variance, zero-width interval");
    assert!(oracle.success_ci[0] > 0.9 && oracle.success_ci[1] == 1.0);
    assert_eq!((random.episodes, random.mean_steps), (60, 2.0));
    // Random play hits 1 in 3: the interval must contain it and be non-trivial.
    assert!(random.success_ci[0] < 1.0 / 3.0 && 1.0 / 3.0 < random.success_ci[1], "{random:?}");
    assert!(random.reward_ci[0] < random.mean_reward && random.mean_reward < random.reward_ci[1]);
    assert!(random.reward_ci[0] < 2.0 / 3.0 && 2.0 / 3.0 < random.reward_ci[1], "{random:?}");
    // Deterministic whatever the thread count (timings aside).
    let again = run_suite(&reg, &suite, "random", &Default::default(), &["oracle".into()], 1, 0).unwrap();
    assert_eq!(strip_timing(again), strip_timing(r.clone()));

    let dir = tempfile::tempdir().unwrap();
    let [json, md, svg] = write_outputs(&r, dir.path()).unwrap();
    let back: Report = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    // JSON floats round-trip to within an ulp.
    assert_eq!(back.rows.len(), r.rows.len());
    for (x, y) in back.rows.iter().zip(&r.rows) {
        assert_eq!((&x.env, &x.policy, x.episodes, x.baseline), (&y.env, &y.policy, y.episodes, y.baseline));
        for (u, v) in
            [(x.mean_reward, y.mean_reward), (x.reward_ci[1], y.reward_ci[1]), (x.success_ci[0], y.success_ci[0])]
        {
            assert!((u - v).abs() < 1e-12, "{u} vs {v}");
        }
    }
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("| guess | **random** | 60 |") && md.contains("*oracle*"), "{md}");
    assert!(md.contains("100.0% ["), "{md}");
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(">guess<") && svg.contains(">oracle<") && svg.matches("<rect").count() >= 5);
    assert_eq!(markdown(&back), md);

    let cmp = compare_markdown(&r, &r, "a", "b");
    assert!(cmp.contains("| guess | random | random |") && cmp.contains("+0.0 pp"), "{cmp}");
    assert!(!cmp.contains("Warning"));
}

#[test]
fn unknown_suite_env_is_a_clear_error() {
    let suite = Suite::parse(&SUITE.replace("\"guess\"", "\"chess\"")).unwrap();
    let e = run_suite(&test_registry(), &suite, "random", &Default::default(), &[], 1, 0).unwrap_err();
    assert!(format!("{e:#}").contains("unknown env `chess`"), "{e:#}");
    assert!(Suite::parse("name = \"x\"\nversion = 1\nenv = []").is_err());
    assert!(Suite::parse(&SUITE.replace("episodes = 60", "episodes = 0")).is_err());
}

#[test]
fn default_suite_names_only_registered_envs() {
    let suite = Suite::load("default").unwrap();
    assert_eq!(suite.name, "default");
    assert!(suite.version >= 1);
    let reg = envs::Registry::builtin();
    for e in &suite.envs {
        assert!(reg.spec(&e.id).is_ok(), "default suite names `{}`, which is not registered", e.id);
        reg.options(&e.id, &[] as &[&str]).unwrap();
    }
}

#[test]
fn cli_bench_writes_outputs_and_compares() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("echo.toml");
    std::fs::write(&suite, "name = \"echo\"\nversion = 1\n[[env]]\nid = \"echo\"\nseed_start = 0\nepisodes = 5\n")
        .unwrap();
    let out = dir.path().join("out");
    let gym = env!("CARGO_BIN_EXE_gym");
    let o = Command::new(gym)
        .args(["bench", "--policy", "random", "--baselines", "oracle", "--suite"])
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("| echo | **random** | 5 |"), "{stdout}");
    assert!(!stdout.contains("oracle"), "a baseline that cannot play is left out of the table: {stdout}");
    for f in ["bench.json", "bench.md", "bench.svg"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let j = out.join("bench.json");
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    let oracle = report.rows.iter().find(|r| r.policy == "oracle").expect("oracle row in JSON");
    assert!(oracle.skipped.as_deref().unwrap().contains("offers no demonstration"), "{oracle:?}");
    let o = Command::new(gym).args(["bench", "compare"]).arg(&j).arg(&j).output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("| echo | random | random | 100.0% | 100.0% | +0.0 pp"));
    let o = Command::new(gym).args(["bench", "compare"]).arg(&j).arg(dir.path().join("none.json")).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("none.json"));
}

fn server_args(url: String, sessions: &str, episode: EpisodeMode) -> ServerBenchArgs {
    ServerBenchArgs {
        url,
        sessions: sessions.into(),
        episode,
        reps: 1,
        server_pid: Some(std::process::id()),
        hold_ms: 0,
        message: "1".into(),
        max_steps: 1000,
        timeout_s: 30.0,
        out: None,
        label: "test".into(),
        threads: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_bench_full_and_one_step() {
    let s = start(&["steps=3"], ServerConfig::default()).await;
    let r = run_async(server_args(s.url(), "1,8,32", EpisodeMode::Full)).await.unwrap();
    assert_eq!(r.levels.len(), 3);
    for l in &r.levels {
        assert_eq!(l.success_rate, 1.0, "{l:?}");
        assert_eq!(l.mean_steps, 3.0);
        assert!(l.step_ms.p50 > 0.0 && l.step_ms.p50 <= l.step_ms.p99);
        assert!(l.sessions_per_s > 0.0 && l.server_rss_peak_kib.is_some());
        // Memory before, at the peak and after the batch are all reported.
        let (b, p, a) =
            (l.server_rss_base_kib.unwrap(), l.server_rss_peak_kib.unwrap(), l.server_rss_after_kib.unwrap());
        assert!(b <= p && a > 0, "{b} {p} {a}");
    }
    assert_eq!(r.max_batch_95, Some(32));
    let r = run_async(server_args(s.url(), "4", EpisodeMode::OneStep)).await.unwrap();
    assert_eq!(r.levels[0].mean_steps, 1.0);
    let md = gym::bench::server::markdown(&r);
    assert!(md.contains("| 4 | 100.0% |") && md.contains("before / peak / after"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_bench_counts_capacity_failures() {
    let s = start(&[], ServerConfig { max_sessions: 4, ..ServerConfig::default() }).await;
    let mut a = server_args(s.url(), "2,12", EpisodeMode::OneStep);
    a.hold_ms = 300;
    let r = run_async(a).await.unwrap();
    assert_eq!(r.levels[0].success_rate, 1.0);
    let l = &r.levels[1];
    assert!(l.failures >= 8, "{l:?}");
    assert_eq!(l.errors[0].0, "CAPACITY_REACHED");
    assert_eq!(r.max_batch_95, Some(2));
}
