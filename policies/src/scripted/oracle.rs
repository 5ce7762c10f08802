use envs::{Completion, Policy, PolicyError, Request, SamplingParams};

/// Replies with the env's own demonstration: the correct answer in the
/// expected format. Where the env knows the answer (math, vision-qa,
/// sudoku) its score is the reward ceiling; 2048's demonstration is only the
/// greedy-merge move (the `expectimax` policy is the strong baseline there).
pub struct Oracle;

impl Policy for Oracle {
    fn name(&self) -> &str {
        "oracle"
    }

    fn privileged(&self) -> bool {
        true
    }

    fn generate(&self, requests: &[Request<'_>], params: &SamplingParams) -> Result<Vec<Vec<Completion>>, PolicyError> {
        requests
            .iter()
            .map(|r| {
                let a = r.oracle.ok_or_else(|| {
                    PolicyError::Unsupported(format!("env `{}` offers no demonstration for the oracle", r.key.env))
                })?;
                Ok(vec![Completion { action: a.clone(), ..Completion::default() }; params.n.max(1)])
            })
            .collect()
    }
}
