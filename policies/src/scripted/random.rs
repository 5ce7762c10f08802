use rand::seq::SliceRandom;
use rand::Rng;

use envs::{Completion, Observation, Policy, PolicyError, Request, SamplingParams};

use super::rng_for;

/// Uniformly random play: a random legal action when the env lists them,
/// otherwise a random answer shaped by the observation's `answer_space`
/// (see [`envs::Observation::state`]): a number in range, a grid of digits,
/// or one of a list of choices, inside the env's answer tag.
pub struct RandomPolicy;

fn random_reply(obs: &Observation, rng: &mut impl Rng) -> String {
    if let Some(a) = obs.legal_actions.choose(rng) {
        return a.clone();
    }
    let space = &obs.state["answer_space"];
    let tag = obs.state["answer_tag"].as_str().unwrap_or("answer");
    let answer = match space["kind"].as_str() {
        Some("number") => {
            let lo = space["min"].as_i64().unwrap_or(0);
            let hi = space["max"].as_i64().unwrap_or(100).max(lo);
            rng.gen_range(lo..=hi).to_string()
        }
        Some("grid") => {
            let n = space["size"].as_u64().unwrap_or(9).clamp(1, 16) as usize;
            (0..n)
                .map(|_| (0..n).map(|_| rng.gen_range(1..=n).to_string()).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Some("choice") => {
            space["values"].as_array().and_then(|v| v.choose(rng)).and_then(|v| v.as_str()).unwrap_or("").to_string()
        }
        _ => rng.gen_range(0..=100).to_string(),
    };
    format!("<{tag}>{answer}</{tag}>")
}

impl Policy for RandomPolicy {
    fn name(&self) -> &str {
        "random"
    }

    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError> {
        Ok(requests
            .iter()
            .map(|r| {
                (0..params.n.max(1))
                    .map(|i| Completion::text(random_reply(r.observation, &mut rng_for(r.seed, i))))
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn replies_follow_the_answer_space() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let obs = Observation {
            state: serde_json::json!({"answer_tag": "sol", "answer_space": {"kind": "number", "min": 5, "max": 5}}),
            ..Observation::default()
        };
        assert_eq!(random_reply(&obs, &mut rng), "<sol>5</sol>");
        let obs = Observation {
            state: serde_json::json!({"answer_space": {"kind": "grid", "size": 4}}),
            ..Observation::default()
        };
        let r = random_reply(&obs, &mut rng);
        assert_eq!(r.lines().count(), 4);
        assert!(r.starts_with("<answer>"));
        let obs = Observation { legal_actions: vec!["a".into(), "b".into()], ..Observation::default() };
        assert!(["a", "b"].contains(&random_reply(&obs, &mut rng).as_str()));
    }
}
