//! The conversation of one episode: what a policy is shown.
//!
//! The rollout engine keeps one [`Conversation`] per episode and passes it
//! with every request ([`crate::Request::messages`]); `gym run`, `gym train`
//! and `gym chat` all use this record, so a model is evaluated on the
//! prompts it was trained on.
//!
//! The conversation starts with the first observation's messages (system
//! prompt and task). After each step it grows by the policy's reply (an
//! assistant message) and the next observation's user text
//! ([`crate::Observation::text`]). What the policy sees of it is the env's
//! [`History`] choice.

use serde::{Deserialize, Serialize};

use crate::types::{Message, Observation};

/// How much of an episode's conversation a policy is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum History {
    /// The whole conversation: first observation, every reply and every
    /// later observation (the default, and what `gym train` trains on).
    #[default]
    Full,
    /// Only the latest observation's messages (a Markov view: the prompt
    /// does not grow with the episode).
    Latest,
}

impl History {
    /// The names accepted by [`History::parse`].
    pub const NAMES: [&'static str; 2] = ["full", "latest"];

    /// Parses `full` or `latest`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Self::Full),
            "latest" => Some(Self::Latest),
            _ => None,
        }
    }
}

/// One episode's messages, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    messages: Vec<Message>,
}

impl Conversation {
    /// A conversation opened by `messages` (a first observation's, or a
    /// chat's system message).
    pub fn new(messages: Vec<Message>) -> Self {
        Self { messages }
    }

    /// Every message so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Appends the policy's reply.
    pub fn reply(&mut self, text: impl Into<String>) {
        self.messages.push(Message::assistant(text));
    }

    /// Appends a user turn.
    pub fn user(&mut self, text: impl Into<String>) {
        self.messages.push(Message::user(text));
    }

    /// Appends what the policy is told after a step: the observation's user
    /// text.
    pub fn observe(&mut self, obs: &Observation) {
        self.user(obs.text());
    }

    /// Removes the last message (a user turn whose reply failed).
    pub fn pop(&mut self) -> Option<Message> {
        self.messages.pop()
    }

    /// What a policy answering `latest` is shown under `history`.
    pub fn view<'a>(&'a self, latest: &'a Observation, history: History) -> &'a [Message] {
        match history {
            History::Full => &self.messages,
            History::Latest => &latest.messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_reply_and_observation_text_and_views_follow_the_history_choice() {
        let first =
            Observation { messages: vec![Message::system("rules"), Message::user("board 1")], ..Default::default() };
        let mut c = Conversation::new(first.messages.clone());
        c.reply("up");
        let next =
            Observation { messages: vec![Message::system("rules"), Message::user("board 2")], ..Default::default() };
        c.observe(&next);
        let roles: Vec<_> = c.messages().iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            roles,
            [
                (crate::Role::System, "rules"),
                (crate::Role::User, "board 1"),
                (crate::Role::Assistant, "up"),
                (crate::Role::User, "board 2")
            ]
        );
        assert_eq!(c.view(&next, History::Full).len(), 4);
        assert_eq!(c.view(&next, History::Latest), next.messages.as_slice());
        assert_eq!(History::parse("latest"), Some(History::Latest));
        assert_eq!(History::parse("all"), None);
    }
}
