//! A fault-injecting PostgreSQL wire-protocol proxy (placeholder).
