//! The command line (clap derive), raw: global options, each overriding the environment
//! variable named in its help, and one subcommand per operation. The library's options become
//! [`crdb_migrate::Overrides`] (validated into a `Config`), the logging options
//! [`LogOptions`] (validated into the binary's own settings).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::settings::LogOptions;

/// Applies SQL schema migrations to CockroachDB (and PostgreSQL) from inside Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "crdb-migrate", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) global: Global,
}

/// Options every command takes; each overrides the environment variable named in its help.
#[derive(Args, Debug)]
pub(crate) struct Global {
    /// postgresql://user[:password]@host[:port]/db?sslmode=... [env: DATABASE_URL]
    #[arg(long, global = true)]
    pub(crate) database_url: Option<String>,
    /// Directory of migration files [env: MIGRATIONS_DIR] [default: ./migrations]
    #[arg(long, global = true)]
    pub(crate) migrations_dir: Option<PathBuf>,
    /// Merge MIGRATIONS_DIR/<ENVIRONMENT>/ into the set [env: ENVIRONMENT]
    #[arg(long, global = true)]
    pub(crate) environment: Option<String>,
    /// Ledger table name [env: MIGRATE_TABLE] [default: _migrations]
    #[arg(long, global = true)]
    pub(crate) table: Option<String>,
    /// How long to wait for the database [env: MIGRATE_WAIT_TIMEOUT] [default: 300s]
    #[arg(long, global = true)]
    pub(crate) wait_timeout: Option<String>,
    /// Lease time to live [env: MIGRATE_LEASE_TTL] [default: 30s]
    #[arg(long, global = true)]
    pub(crate) lease_ttl: Option<String>,
    /// How long to wait for the lease [env: MIGRATE_LEASE_TIMEOUT] [default: 600s]
    #[arg(long, global = true)]
    pub(crate) lease_timeout: Option<String>,
    /// Our name in the lease [env: MIGRATE_HOLDER, else POD_NAME, else host-pid]
    #[arg(long, global = true)]
    pub(crate) holder: Option<String>,
    /// json or text [env: LOG_FORMAT] [default: json]
    #[arg(long, global = true)]
    pub(crate) log_format: Option<String>,
    /// Log filter, e.g. info or debug [env: LOG_LEVEL or RUST_LOG] [default: info]
    #[arg(long, global = true)]
    pub(crate) log_level: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Apply pending migrations up to the target (the default command).
    Migrate {
        /// Stop at this version [env: MIGRATE_TARGET_VERSION] [default: the newest file]
        #[arg(long)]
        target: Option<String>,
        /// A fleet: one target per line (a name or a URL) [env: MIGRATE_TARGETS_FILE]
        #[arg(long, value_name = "FILE")]
        targets: Option<PathBuf>,
    },
    /// Undo the newest migration, the newest N, every one above a version, or every one newer
    /// than this image.
    Rollback {
        /// Undo the newest N applied migrations.
        #[arg(long, conflicts_with_all = ["target", "to_image"])]
        count: Option<usize>,
        /// Undo every applied migration above this version (0: all).
        #[arg(long, conflicts_with = "to_image")]
        target: Option<String>,
        /// Undo every applied migration newer than this image's newest file, with the undo the
        /// ledger keeps (what an older release runs when it is rolled back to).
        #[arg(long)]
        to_image: bool,
        /// A fleet: one target per line (a name or a URL) [env: MIGRATE_TARGETS_FILE]
        #[arg(long, value_name = "FILE")]
        targets: Option<PathBuf>,
    },
    /// Show applied, pending, dirty and unknown migrations and the lease.
    Status {
        /// Print the stable JSON form.
        #[arg(long)]
        json: bool,
        /// A fleet: one target per line (a name or a URL) [env: MIGRATE_TARGETS_FILE]
        #[arg(long, value_name = "FILE")]
        targets: Option<PathBuf>,
    },
    /// Print the live schema in its canonical form (same objects, same output).
    Schema {
        /// Print the JSON form (with its hash).
        #[arg(long)]
        json: bool,
    },
    /// On a scratch database: apply each migration, run its undo, check the schema is restored.
    Test {
        /// Print the per-migration verdicts as JSON.
        #[arg(long)]
        json: bool,
        /// Run even when the database holds objects besides our ledger.
        #[arg(long)]
        force: bool,
    },
    /// Write a new migration file and print its path (no database needed).
    Create {
        /// What the migration does, e.g. "add users email".
        description: String,
        /// Forward SQL to write into the file.
        #[arg(long)]
        up: Option<String>,
        /// Undo SQL to write after `-- @UNDO`.
        #[arg(long)]
        undo: Option<String>,
    },
    /// Check the migration files offline (no database needed).
    Verify {
        /// Exit 20 when a warning of severity `risk` is found (for CI).
        #[arg(long)]
        strict: bool,
    },
    /// Show what migrate would do, without doing it.
    Plan {
        /// Plan up to this version [env: MIGRATE_TARGET_VERSION]
        #[arg(long)]
        target: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// A fleet: one target per line (a name or a URL) [env: MIGRATE_TARGETS_FILE]
        #[arg(long, value_name = "FILE")]
        targets: Option<PathBuf>,
    },
    /// Wait, without the lease, until every migration up to VERSION is applied.
    Wait {
        /// The version to wait for.
        #[arg(long)]
        version: String,
    },
    /// Resolve a dirty mark or accept an edited file, under the lease.
    Repair {
        /// The migration's version.
        #[arg(long)]
        version: String,
        /// The change is in place: record it as applied.
        #[arg(long, group = "action")]
        mark_applied: bool,
        /// Nothing of it remains: remove its row.
        #[arg(long, group = "action")]
        mark_not_applied: bool,
        /// The file was edited on purpose: record its new checksum.
        #[arg(long, group = "action")]
        accept_checksum: bool,
    },
    /// Convert another tool's migration directory into this format (no database needed).
    Import {
        /// The tool: golang-migrate, sqlx, goose, dbmate, flyway, diesel or pop.
        #[arg(long = "from")]
        from: String,
        /// The other tool's migrations directory.
        src: PathBuf,
        /// Where to write (never overwriting) [default: MIGRATIONS_DIR]
        #[arg(long)]
        into: Option<PathBuf>,
        /// pop only: which dialect's variant to take (postgres or cockroach).
        #[arg(long)]
        dialect: Option<String>,
    },
    /// Record files as applied without running them, under the lease.
    Baseline {
        /// Every file up to and including this version.
        #[arg(long, conflicts_with = "from", required_unless_present = "from")]
        version: Option<String>,
        /// Exactly what this tool's history table in the database says is applied.
        #[arg(long = "from")]
        from: Option<String>,
    },
    /// Show the lease; with --force, release it.
    Unlock {
        /// Release the lease whoever holds it.
        #[arg(long)]
        force: bool,
    },
}

impl Command {
    /// Takes out `--targets FILE` (of `migrate`, `rollback`, `status`, `plan`).
    pub(crate) fn take_targets(&mut self) -> Option<PathBuf> {
        match self {
            Command::Migrate { targets, .. }
            | Command::Rollback { targets, .. }
            | Command::Status { targets, .. }
            | Command::Plan { targets, .. } => targets.take(),
            _ => None,
        }
    }

    /// Whether the command can work on a fleet of targets.
    pub(crate) fn takes_targets(&self) -> bool {
        matches!(
            self,
            Command::Migrate { .. }
                | Command::Rollback { .. }
                | Command::Status { .. }
                | Command::Plan { .. }
        )
    }

    /// Whether the command needs no database (so a fleet's settings do not concern it).
    pub(crate) fn is_offline(&self) -> bool {
        matches!(
            self,
            Command::Create { .. } | Command::Verify { .. } | Command::Import { .. }
        )
    }
}

impl Global {
    /// The options as overrides of the environment, with `--targets` (taken from the command).
    pub(crate) fn overrides(self, targets_file: Option<PathBuf>) -> crdb_migrate::Overrides {
        crdb_migrate::Overrides {
            database_url: self.database_url,
            migrations_dir: self.migrations_dir,
            environment: self.environment,
            table: self.table,
            wait_timeout: self.wait_timeout,
            lease_ttl: self.lease_ttl,
            lease_timeout: self.lease_timeout,
            holder: self.holder,
            targets_file,
        }
    }

    /// Takes out the logging options, which only the binary reads.
    pub(crate) fn log_options(&mut self) -> LogOptions {
        LogOptions {
            format: self.log_format.take(),
            level: self.log_level.take(),
        }
    }
}
