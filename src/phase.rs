//! The rollout phase a run is limited to (`MIGRATE_PHASE`): a leaf value the configuration
//! reads and the planner cuts at.

/// A rollout phase (`MIGRATE_PHASE`), for rollouts where old pods run against the new schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before (or during) the rollout: apply pending migrations up to, not including, the first
    /// `@CONTRACT` one.
    Expand,
    /// After the rollout: apply the rest (every pending migration).
    Contract,
}

impl Phase {
    /// `expand` or `contract`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Expand => "expand",
            Phase::Contract => "contract",
        }
    }

    /// Parses `expand` or `contract` (any case); the error says what is accepted.
    pub fn parse(s: &str) -> std::result::Result<Phase, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "expand" => Ok(Phase::Expand),
            "contract" => Ok(Phase::Contract),
            _ => Err(format!(
                "expected expand or contract (leave it unset to apply everything), got {s:?}"
            )),
        }
    }
}
