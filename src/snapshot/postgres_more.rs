//! More of what `pg_dump --schema-only` writes, for the PostgreSQL reader: owners, default
//! privileges, column and type grants, column storage and options, clustering, view options,
//! identity options, replica identity indexes, unlogged sequences, typed tables, statistics on
//! expressions, range options, comments on constraints, triggers, policies and rules,
//! aggregate details, and (in
//! `postgres_objects`) the objects outside tables and routines. Same row shape as the main
//! reader: `(kind, name, part, value)`, `$1` our own tables. An owner is named only when it is
//! not the database's owner (nor `pg_database_owner`), so a schema made by the usual role reads
//! as before.

/// A user schema (alias `n`): the reader's one filter, which `scoped` narrows to a tenant's
/// schemas by its text.
pub(super) use super::postgres::{TOAST_OPTIONS, USER_NS};

/// Not a member of an extension (its objects come with it).
pub(super) fn own(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '{catalog}'::regclass \
         AND dep.objid = {oid} AND dep.deptype = 'e')"
    )
}

/// The role `col` names when it is not the database's owner, else `NULL`.
pub(super) fn owner_name(col: &str) -> String {
    format!(
        "CASE WHEN {col} NOT IN (SELECT datdba FROM pg_database WHERE datname = current_database() \
         UNION ALL SELECT oid FROM pg_roles WHERE rolname = 'pg_database_owner') \
         THEN pg_get_userbyid({col}) END"
    )
}

/// ` owner <role>` when `col` is not the database's owner, else `''`.
pub(super) fn owner(col: &str) -> String {
    format!("coalesce(' owner ' || {}, '')", owner_name(col))
}

/// An ACL as sorted text, `NULL` when it is the default for `kind` (as `acldefault`).
pub(super) fn grants(acl: &str, kind: &str, owner_col: &str) -> String {
    let sorted =
        |a: &str| format!("(SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest({a}) x)");
    format!(
        "CASE WHEN {acl} IS NOT NULL AND {} IS DISTINCT FROM {} THEN coalesce({}, 'none') END",
        sorted(acl),
        sorted(&format!("acldefault('{kind}', {owner_col})")),
        sorted(acl)
    )
}

pub(super) const REL: &str = "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace";
pub(super) const QNAME: &str = "n.nspname || '.' || c.relname";
const REL_KIND: &str = "CASE c.relkind WHEN 'f' THEN 'foreign table' WHEN 'v' THEN 'view' \
    WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' \
    WHEN 'I' THEN 'index' ELSE 'table' END";
const ROUTINE_KIND: &str =
    "CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END";
const ROUTINE_NAME: &str =
    "n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'";

pub(super) fn user_rel() -> String {
    format!(
        "{USER_NS} AND {} AND NOT (c.relname = ANY($1))",
        own("pg_class", "c.oid")
    )
}

/// Every query of this module (the reader sends them with `postgres_objects`' as one
/// statement).
pub(super) fn queries() -> Vec<String> {
    [
        owners_and_grants(),
        column_and_relation_details(),
        identity_and_storage_details(),
        comments(),
    ]
    .concat()
}

fn owners_and_grants() -> Vec<String> {
    let rel = user_rel();
    let types = format!(
        "pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {USER_NS} AND {} \
         AND t.typtype IN ('e', 'd', 'c', 'r') \
         AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')",
        own("pg_type", "t.oid")
    );
    vec![
        format!(
            "SELECT * FROM (SELECT {REL_KIND}, {QNAME}, 'owner', {} AS v FROM {REL} \
             WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND {rel} AND NOT EXISTS \
             (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_class'::regclass AND i.objid = c.oid \
              AND i.deptype = 'i')) o WHERE v IS NOT NULL",
            owner_name("c.relowner")
        ),
        format!(
            "SELECT * FROM (SELECT 'schema', n.nspname, 'owner', {} AS v \
             FROM pg_namespace n WHERE {USER_NS} AND {}) o WHERE v IS NOT NULL",
            owner_name("n.nspowner"),
            own("pg_namespace", "n.oid")
        ),
        format!(
            "SELECT * FROM (SELECT {ROUTINE_KIND}, {ROUTINE_NAME}, 'owner', {} AS v \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER_NS} AND {}) o \
             WHERE v IS NOT NULL",
            owner_name("p.proowner"),
            own("pg_proc", "p.oid")
        ),
        format!(
            "SELECT * FROM (SELECT 'type', n.nspname || '.' || t.typname, 'owner', \
             {} AS v FROM {types}) o WHERE v IS NOT NULL",
            owner_name("t.typowner")
        ),
        format!(
            "SELECT * FROM (SELECT 'type', n.nspname || '.' || t.typname, 'grants', {} AS v \
             FROM {types}) o WHERE v IS NOT NULL",
            grants("t.typacl", "T", "t.typowner")
        ),
        format!(
            "SELECT {REL_KIND}, {QNAME}, 'grants on column ' || a.attname, \
             (SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest(a.attacl) x) \
             FROM pg_attribute a JOIN {REL} ON c.oid = a.attrelid WHERE a.attnum > 0 \
             AND NOT a.attisdropped AND cardinality(a.attacl) > 0 AND {rel}"
        ),
        "SELECT 'default privileges', 'for role ' || pg_get_userbyid(d.defaclrole) \
         || coalesce(' in schema ' || n.nspname, '') || ' on ' || CASE d.defaclobjtype \
         WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions' \
         WHEN 'T' THEN 'types' ELSE 'schemas' END, 'grants', \
         coalesce((SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest(d.defaclacl) x), 'none') \
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace"
            .into(),
    ]
}

/// Column storage, compression and options; table access method; clustering and statistics
/// targets of indexes; view options and view column defaults; statistics object targets;
/// aggregate details.
fn column_and_relation_details() -> Vec<String> {
    let rel = user_rel();
    vec![
        format!(
            "SELECT * FROM (SELECT {REL_KIND}, {QNAME}, 'column ' || a.attname || ' options', concat_ws(' ', \
               CASE WHEN a.attstorage <> t.typstorage THEN 'storage ' || CASE a.attstorage \
                 WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external' WHEN 'm' THEN 'main' ELSE 'extended' END END, \
               CASE a.attcompression WHEN 'p' THEN 'compression pglz' WHEN 'l' THEN 'compression lz4' END, \
               'with ' || array_to_string(a.attoptions, ', '), \
               'fdw options ' || array_to_string(a.attfdwoptions, ', ')) AS v \
             FROM pg_attribute a JOIN {REL} ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'm') AND {rel}) o \
             WHERE v <> ''"
        ),
        format!(
            "SELECT {REL_KIND}, {QNAME}, 'access method', am.amname FROM {REL} \
             JOIN pg_am am ON am.oid = c.relam WHERE c.relkind IN ('r', 'm') AND am.amname <> 'heap' AND {rel}"
        ),
        format!(
            "SELECT 'index', n.nspname || '.' || i.relname, 'clustered', 'yes' FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid JOIN {REL} ON c.oid = x.indrelid \
             WHERE x.indisclustered AND {rel}"
        ),
        format!(
            "SELECT 'index', {QNAME}, 'column statistics', string_agg(a.attnum || ' ' || a.attstattarget, ', ' \
             ORDER BY a.attnum) FROM pg_attribute a JOIN {REL} ON c.oid = a.attrelid \
             WHERE c.relkind IN ('i', 'I') AND a.attstattarget > 0 AND {rel} GROUP BY n.nspname, c.relname"
        ),
        format!(
            "SELECT {REL_KIND}, {QNAME}, 'options', concat_ws(' ', 'with ' || array_to_string(c.reloptions, ', '), \
             {TOAST_OPTIONS}) FROM {REL} WHERE c.relkind IN ('v', 'm') AND {rel} \
             AND concat_ws(' ', array_to_string(c.reloptions, ', '), {TOAST_OPTIONS}) <> ''"
        ),
        format!(
            "SELECT {REL_KIND}, {QNAME}, 'column ' || a.attname || ' default', pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
             JOIN {REL} ON c.oid = d.adrelid WHERE c.relkind = 'v' AND {rel}"
        ),
        format!(
            "SELECT 'statistics', n.nspname || '.' || s.stxname, 'statistics target', \
             s.stxstattarget::text FROM pg_statistic_ext s JOIN {REL} ON c.oid = s.stxrelid \
             WHERE s.stxstattarget >= 0 AND {rel}"
        ),
        format!(
            "SELECT 'aggregate', {ROUTINE_NAME}, 'details', (to_jsonb(a) - 'aggfnoid' - 'aggtranstype' \
             - 'aggmtranstype' - 'aggsortop')::text || ' stype ' || format_type(a.aggtranstype, NULL) \
             || CASE WHEN a.aggmtranstype <> 0 THEN ' mstype ' || format_type(a.aggmtranstype, NULL) ELSE '' END \
             || CASE WHEN a.aggsortop <> 0 THEN ' sortop ' || a.aggsortop::regoperator::text ELSE '' END \
             FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid \
             JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER_NS} AND {}",
            own("pg_proc", "p.oid")
        ),
    ]
}

/// An identity column's sequence options, the index a replica identity uses, unlogged
/// sequences, typed tables, extended statistics on expressions, and a range type's options.
/// The identity sequence's and the multirange type's names are left out: they follow their
/// column's and range's.
fn identity_and_storage_details() -> Vec<String> {
    let rel = user_rel();
    vec![
        format!(
            "SELECT 'table', {QNAME}, 'column ' || a.attname || ' identity', \
             format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement \
             || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache \
             || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END \
             || CASE WHEN sc.relpersistence = 'u' THEN ' unlogged' ELSE '' END \
             FROM pg_sequence s JOIN pg_class sc ON sc.oid = s.seqrelid \
             JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid AND d.deptype = 'i' \
             JOIN {REL} ON c.oid = d.refobjid \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid WHERE {rel}"
        ),
        format!(
            "SELECT 'index', n.nspname || '.' || i.relname, 'replica identity', 'yes' FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid JOIN {REL} ON c.oid = x.indrelid \
             WHERE x.indisreplident AND {rel}"
        ),
        format!(
            "SELECT 'sequence', {QNAME}, 'options', 'unlogged' FROM {REL} WHERE c.relkind = 'S' \
             AND c.relpersistence = 'u' AND {rel} AND NOT EXISTS (SELECT 1 FROM pg_depend i \
             WHERE i.classid = 'pg_class'::regclass AND i.objid = c.oid AND i.deptype = 'i')"
        ),
        format!(
            "SELECT 'table', {QNAME}, 'of type', format_type(c.reloftype, NULL) FROM {REL} \
             WHERE c.reloftype <> 0 AND {rel}"
        ),
        format!(
            "SELECT 'statistics', n.nspname || '.' || s.stxname, 'expressions', \
             array_to_string(pg_get_statisticsobjdef_expressions(s.oid), ', ') FROM pg_statistic_ext s \
             JOIN {REL} ON c.oid = s.stxrelid WHERE s.stxexprs IS NOT NULL AND {rel}"
        ),
        format!(
            "SELECT 'type', n.nspname || '.' || t.typname, 'range options', concat_ws(' ', \
             'opclass ' || (SELECT opcname FROM pg_opclass WHERE oid = r.rngsubopc), \
             'collation ' || (SELECT collname FROM pg_collation WHERE oid = NULLIF(r.rngcollation, 0)), \
             'canonical ' || NULLIF(r.rngcanonical, 0)::regproc::text, \
             'subtype_diff ' || NULLIF(r.rngsubdiff, 0)::regproc::text) \
             FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid \
             JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {USER_NS} AND {}",
            own("pg_type", "t.oid")
        ),
    ]
}

/// Comments on constraints, triggers, policies and rules (those on relations, columns,
/// routines, schemas and types are the main reader's).
fn comments() -> Vec<String> {
    let rel = user_rel();
    vec![
        format!(
            "SELECT 'table', {QNAME}, 'comment on constraint ' || k.conname, d.description \
             FROM pg_description d JOIN pg_constraint k ON k.oid = d.objoid JOIN {REL} ON c.oid = k.conrelid \
             WHERE d.classoid = 'pg_constraint'::regclass AND {rel}"
        ),
        format!(
            "SELECT 'type', n.nspname || '.' || t.typname, 'comment on constraint ' || k.conname, d.description \
             FROM pg_description d JOIN pg_constraint k ON k.oid = d.objoid JOIN pg_type t ON t.oid = k.contypid \
             JOIN pg_namespace n ON n.oid = t.typnamespace \
             WHERE d.classoid = 'pg_constraint'::regclass AND {USER_NS}"
        ),
        format!(
            "SELECT 'trigger', t.tgname || ' on ' || {QNAME}, 'comment', d.description \
             FROM pg_description d JOIN pg_trigger t ON t.oid = d.objoid JOIN {REL} ON c.oid = t.tgrelid \
             WHERE d.classoid = 'pg_trigger'::regclass AND {rel}"
        ),
        format!(
            "SELECT 'table', {QNAME}, 'comment on policy ' || p.polname, d.description \
             FROM pg_description d JOIN pg_policy p ON p.oid = d.objoid JOIN {REL} ON c.oid = p.polrelid \
             WHERE d.classoid = 'pg_policy'::regclass AND {rel}"
        ),
        format!(
            "SELECT 'rule', r.rulename || ' on ' || {QNAME}, 'comment', d.description \
             FROM pg_description d JOIN pg_rewrite r ON r.oid = d.objoid JOIN {REL} ON c.oid = r.ev_class \
             WHERE d.classoid = 'pg_rewrite'::regclass AND r.rulename <> '_RETURN' AND {rel}"
        ),
    ]
}
