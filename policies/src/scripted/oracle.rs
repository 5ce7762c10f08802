use envs::{Completion, Policy, PolicyError, Request, SamplingParams};

/// Replies with the env's own demonstration: the correct answer in the
/// expected format. Its score is the env's reward ceiling.
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
