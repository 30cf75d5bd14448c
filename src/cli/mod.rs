//! What only the binary needs, private to it.

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod fleet;
pub(crate) mod logging;
pub(crate) mod render;
pub(crate) mod settings;
pub(crate) mod signals;
pub(crate) mod span_fields;
pub(crate) mod termination;
