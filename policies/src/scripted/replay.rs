use std::collections::HashMap;
use std::path::Path;

use envs::{Completion, EpisodeRecord, Policy, PolicyError, Request, SamplingParams};

/// Replays recorded completions, keyed by (env, seed, sample, step).
///
/// Each line of the file is either a trajectory line written by
/// `gym run --out` (its steps' actions are replayed) or a single record
/// `{"env": "math", "seed": 3, "sample": 0, "step": 0, "completion": "..."}`
/// where `env` may be omitted (any env) and `sample`/`step` default to 0.
/// A request with no recorded completion is an error naming the key.
pub struct Replay {
    by_key: HashMap<(Option<String>, u64, usize, usize), String>,
}

#[derive(serde::Deserialize)]
struct Single {
    env: Option<String>,
    seed: u64,
    #[serde(default)]
    sample: usize,
    #[serde(default)]
    step: usize,
    completion: String,
}

impl Replay {
    /// Reads a replay file; errors name the file and line.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses replay JSONL text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut by_key = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
            if envs::rollout::is_summary_line(&v) {
                continue;
            }
            if v.get("steps").is_some() {
                let ep: EpisodeRecord =
                    serde_json::from_value(v).map_err(|e| format!("line {}: bad trajectory record: {e}", i + 1))?;
                for (t, s) in ep.steps.iter().enumerate() {
                    by_key.insert((Some(ep.env.clone()), ep.seed, ep.sample, t), s.action.clone());
                }
            } else {
                let s: Single = serde_json::from_value(v).map_err(|e| format!("line {}: {e}", i + 1))?;
                by_key.insert((s.env, s.seed, s.sample, s.step), s.completion);
            }
        }
        if by_key.is_empty() {
            return Err("no completions recorded".into());
        }
        Ok(Self { by_key })
    }

    fn lookup(&self, r: &Request<'_>) -> Option<&String> {
        let k = r.key;
        self.by_key
            .get(&(Some(k.env.to_string()), k.seed, k.sample, k.step))
            .or_else(|| self.by_key.get(&(None, k.seed, k.sample, k.step)))
    }
}

impl Policy for Replay {
    fn name(&self) -> &str {
        "replay"
    }

    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError> {
        requests
            .iter()
            .map(|r| {
                let text = self.lookup(r).ok_or_else(|| {
                    PolicyError::Missing(format!(
                        "replay file has no completion for env {} seed {} sample {} step {}",
                        r.key.env, r.key.seed, r.key.sample, r.key.step
                    ))
                })?;
                Ok(vec![Completion::text(text.clone()); params.n.max(1)])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envs::{Observation, RequestKey};

    fn req<'a>(obs: &'a Observation, env: &'a str, seed: u64, sample: usize, step: usize) -> Request<'a> {
        Request {
            observation: obs,
            messages: &obs.messages,
            oracle: None,
            seed: 0,
            key: RequestKey { env, seed, sample, step },
        }
    }

    #[test]
    fn env_specific_records_win_over_generic_ones() {
        let r = Replay::parse(
            "{\"seed\":1,\"completion\":\"any\"}\n{\"env\":\"math\",\"seed\":1,\"completion\":\"math-only\"}\n",
        )
        .unwrap();
        let obs = Observation::default();
        let p = SamplingParams::default();
        let out = r.generate(&[req(&obs, "math", 1, 0, 0), req(&obs, "sudoku", 1, 0, 0)], &p).unwrap();
        assert_eq!(out[0][0].action.text, "math-only");
        assert_eq!(out[1][0].action.text, "any");
        let err = r.generate(&[req(&obs, "math", 2, 0, 0)], &p).unwrap_err().to_string();
        assert!(err.contains("seed 2"), "{err}");
    }

    #[test]
    fn bad_lines_are_named() {
        let e = Replay::parse("{\"seed\":1,\"completion\":\"a\"}\n{\"seed\":\"x\"}").err().unwrap();
        assert!(e.starts_with("line 2"), "{e}");
        assert!(Replay::parse("").is_err());
    }
}
