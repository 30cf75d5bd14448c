//! The objects `pg_dump --schema-only` writes that are neither relations, types nor routines:
//! event triggers, publications, text search objects, operators, operator families and
//! classes, casts, collations, conversions, access methods, foreign-data wrappers, servers,
//! user mappings, foreign tables' servers, procedural languages and subscriptions. Rows as in
//! `postgres_more`.

use super::postgres_more::{QNAME, REL, USER_NS, grants, own, owner, user_rel};

/// ` comment <text>` when the object has a comment, else `''`.
fn comment(oid: &str, catalog: &str) -> String {
    format!("coalesce(' comment ' || obj_description({oid}, '{catalog}'), '')")
}

/// Every query of this module.
pub(super) fn queries() -> Vec<String> {
    [
        catalog_objects(),
        text_search(),
        foreign_data(),
        languages_and_subscriptions(),
    ]
    .concat()
}

/// Objects that are neither relations, types nor routines. Built-in casts and access methods
/// have oids below 16384 (`FirstNormalObjectId`); everything else of a system schema is left
/// out with its schema; a range type's cast to its multirange comes with the range type.
fn catalog_objects() -> Vec<String> {
    vec![
        format!(
            "SELECT 'event trigger', e.evtname, 'definition', e.evtevent \
             || coalesce(' when tag in (' || array_to_string(e.evttags, ', ') || ')', '') \
             || ' execute ' || e.evtfoid::regproc::text || ' enabled ' || e.evtenabled::text || {} || {} \
             FROM pg_event_trigger e WHERE {}",
            owner("e.evtowner"),
            comment("e.oid", "pg_event_trigger"),
            own("pg_event_trigger", "e.oid")
        ),
        format!(
            "SELECT 'publication', p.pubname, 'definition', concat_ws(' ', \
               CASE WHEN p.puballtables THEN 'for all tables' END, 'publish ' || concat_ws(', ', \
               CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END, \
               CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END), \
               CASE WHEN p.pubviaroot THEN 'via root' END, \
               (SELECT 'tables ' || string_agg(r.prrelid::regclass::text \
                  || coalesce(' where ' || pg_get_expr(r.prqual, r.prrelid), ''), ', ' \
                  ORDER BY r.prrelid::regclass::text) FROM pg_publication_rel r WHERE r.prpubid = p.oid), \
               (SELECT 'schemas ' || string_agg(s.pnnspid::regnamespace::text, ', ' \
                  ORDER BY s.pnnspid::regnamespace::text) FROM pg_publication_namespace s WHERE s.pnpubid = p.oid)) \
             || {} || {} FROM pg_publication p",
            owner("p.pubowner"),
            comment("p.oid", "pg_publication")
        ),
        operators(),
        format!(
            "SELECT 'cast', '(' || format_type(c.castsource, NULL) || ' as ' || format_type(c.casttarget, NULL) \
             || ')', 'definition', CASE c.castmethod WHEN 'f' THEN 'with function ' || c.castfunc::regprocedure::text \
             WHEN 'i' THEN 'with inout' ELSE 'without function' END || CASE c.castcontext \
             WHEN 'a' THEN ' as assignment' WHEN 'i' THEN ' as implicit' ELSE '' END || {} \
             FROM pg_cast c WHERE c.oid >= 16384 AND {} AND NOT EXISTS (SELECT 1 FROM pg_depend i \
             WHERE i.classid = 'pg_cast'::regclass AND i.objid = c.oid AND i.deptype = 'i')",
            comment("c.oid", "pg_cast"),
            own("pg_cast", "c.oid")
        ),
        format!(
            "SELECT 'collation', n.nspname || '.' || c.collname, 'definition', \
             (to_jsonb(c) - 'oid' - 'collname' - 'collnamespace' - 'collowner')::text || {} || {} \
             FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE {USER_NS} AND {}",
            owner("c.collowner"),
            comment("c.oid", "pg_collation"),
            own("pg_collation", "c.oid")
        ),
        format!(
            "SELECT 'conversion', n.nspname || '.' || c.conname, 'definition', \
             pg_encoding_to_char(c.conforencoding) || ' to ' || pg_encoding_to_char(c.contoencoding) \
             || ' from ' || c.conproc::text || CASE WHEN c.condefault THEN ' default' ELSE '' END || {} || {} \
             FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace WHERE {USER_NS} AND {}",
            owner("c.conowner"),
            comment("c.oid", "pg_conversion"),
            own("pg_conversion", "c.oid")
        ),
        format!(
            "SELECT 'access method', a.amname, 'definition', CASE a.amtype WHEN 't' THEN 'table' \
             ELSE 'index' END || ' handler ' || a.amhandler::text || {} FROM pg_am a \
             WHERE a.oid >= 16384 AND {}",
            comment("a.oid", "pg_am"),
            own("pg_am", "a.oid")
        ),
    ]
}

/// Operators, operator families (with their members) and operator classes.
fn operators() -> String {
    [
        format!(
            "SELECT 'operator', n.nspname || '.' || o.oprname || '(' \
             || coalesce(format_type(NULLIF(o.oprleft, 0), NULL), 'none') || ', ' \
             || coalesce(format_type(NULLIF(o.oprright, 0), NULL), 'none') || ')', 'definition', concat_ws(' ', \
             'function ' || o.oprcode::text, 'returns ' || format_type(o.oprresult, NULL), \
             'commutator ' || NULLIF(o.oprcom, 0)::regoperator::text, \
             'negator ' || NULLIF(o.oprnegate, 0)::regoperator::text, \
             'restrict ' || NULLIF(o.oprrest, 0)::regproc::text, 'join ' || NULLIF(o.oprjoin, 0)::regproc::text, \
             CASE WHEN o.oprcanhash THEN 'hashes' END, CASE WHEN o.oprcanmerge THEN 'merges' END) \
             || {} FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE {USER_NS} AND {}",
            owner("o.oprowner"),
            own("pg_operator", "o.oid")
        ),
        format!(
            "SELECT 'operator family', n.nspname || '.' || f.opfname || ' using ' || am.amname, 'definition', \
             concat_ws(' ', 'operators ' || (SELECT string_agg(o.amopstrategy || ' ' || o.amopopr::regoperator::text, \
               ', ' ORDER BY o.amopstrategy, o.amopopr::regoperator::text) FROM pg_amop o WHERE o.amopfamily = f.oid), \
             'functions ' || (SELECT string_agg(p.amprocnum || ' ' || p.amproc::regprocedure::text, ', ' \
               ORDER BY p.amprocnum, p.amproc::regprocedure::text) FROM pg_amproc p WHERE p.amprocfamily = f.oid)) \
             || {} FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace \
             JOIN pg_am am ON am.oid = f.opfmethod WHERE {USER_NS} AND {}",
            owner("f.opfowner"),
            own("pg_opfamily", "f.oid")
        ),
        format!(
            "SELECT 'operator class', n.nspname || '.' || c.opcname || ' using ' || am.amname, 'definition', \
             'for ' || format_type(c.opcintype, NULL) || CASE WHEN c.opcdefault THEN ' default' ELSE '' END \
             || ' family ' || (SELECT fn.nspname || '.' || f.opfname FROM pg_opfamily f \
               JOIN pg_namespace fn ON fn.oid = f.opfnamespace WHERE f.oid = c.opcfamily) \
             || coalesce(' storage ' || format_type(NULLIF(c.opckeytype, 0), NULL), '') || {} \
             FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace \
             JOIN pg_am am ON am.oid = c.opcmethod WHERE {USER_NS} AND {}",
            owner("c.opcowner"),
            own("pg_opclass", "c.oid")
        ),
    ]
    .join(" UNION ALL ")
}

/// Foreign-data wrappers, servers, user mappings, and a foreign table's server and options.
fn foreign_data() -> Vec<String> {
    let rel = user_rel();
    vec![
        format!(
            "SELECT 'foreign data wrapper', w.fdwname, 'definition', concat_ws(' ', \
             'handler ' || NULLIF(w.fdwhandler, 0)::regproc::text, 'validator ' || NULLIF(w.fdwvalidator, 0)::regproc::text, \
             'options ' || array_to_string(w.fdwoptions, ', '), 'grants ' || {}) || {} \
             FROM pg_foreign_data_wrapper w WHERE {}",
            grants("w.fdwacl", "F", "w.fdwowner"),
            owner("w.fdwowner"),
            own("pg_foreign_data_wrapper", "w.oid")
        ),
        format!(
            "SELECT 'server', s.srvname, 'definition', concat_ws(' ', 'wrapper ' || w.fdwname, \
             'type ' || s.srvtype, 'version ' || s.srvversion, 'options ' || array_to_string(s.srvoptions, ', '), \
             'grants ' || {}) || {} FROM pg_foreign_server s \
             JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw WHERE {}",
            grants("s.srvacl", "S", "s.srvowner"),
            owner("s.srvowner"),
            own("pg_foreign_server", "s.oid")
        ),
        "SELECT 'user mapping', u.usename || ' server ' || u.srvname, 'options', \
         coalesce(array_to_string(u.umoptions, ', '), '') FROM pg_user_mappings u"
            .into(),
        format!(
            "SELECT 'foreign table', {QNAME}, 'server', s.srvname \
             || coalesce(' options ' || array_to_string(f.ftoptions, ', '), '') \
             FROM pg_foreign_table f JOIN {REL} ON c.oid = f.ftrelid \
             JOIN pg_foreign_server s ON s.oid = f.ftserver WHERE {rel}"
        ),
    ]
}

/// Text search configurations (with their mappings), dictionaries, parsers and templates.
fn text_search() -> Vec<String> {
    vec![
        format!(
            "SELECT 'text search configuration', n.nspname || '.' || c.cfgname, 'definition', \
             'parser ' || (SELECT pn.nspname || '.' || p.prsname FROM pg_ts_parser p \
               JOIN pg_namespace pn ON pn.oid = p.prsnamespace WHERE p.oid = c.cfgparser) \
             || coalesce(' mapping ' || (SELECT string_agg(m.maptokentype || ':' || m.mapdict::regdictionary::text, \
               ' ' ORDER BY m.maptokentype, m.mapseqno) FROM pg_ts_config_map m WHERE m.mapcfg = c.oid), '') \
             || {} || {} FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace WHERE {USER_NS} AND {}",
            owner("c.cfgowner"),
            comment("c.oid", "pg_ts_config"),
            own("pg_ts_config", "c.oid")
        ),
        format!(
            "SELECT 'text search dictionary', n.nspname || '.' || d.dictname, 'definition', \
             'template ' || (SELECT tn.nspname || '.' || t.tmplname FROM pg_ts_template t \
               JOIN pg_namespace tn ON tn.oid = t.tmplnamespace WHERE t.oid = d.dicttemplate) \
             || coalesce(' options ' || d.dictinitoption, '') || {} || {} \
             FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace WHERE {USER_NS} AND {}",
            owner("d.dictowner"),
            comment("d.oid", "pg_ts_dict"),
            own("pg_ts_dict", "d.oid")
        ),
        format!(
            "SELECT 'text search parser', n.nspname || '.' || p.prsname, 'definition', concat_ws(' ', \
             p.prsstart::text, p.prstoken::text, p.prsend::text, p.prsheadline::text, p.prslextype::text) \
             FROM pg_ts_parser p JOIN pg_namespace n ON n.oid = p.prsnamespace WHERE {USER_NS} AND {}",
            own("pg_ts_parser", "p.oid")
        ),
        format!(
            "SELECT 'text search template', n.nspname || '.' || t.tmplname, 'definition', \
             t.tmplinit::text || ' ' || t.tmpllexize::text FROM pg_ts_template t \
             JOIN pg_namespace n ON n.oid = t.tmplnamespace WHERE {USER_NS} AND {}",
            own("pg_ts_template", "t.oid")
        ),
    ]
}

/// Procedural languages made with CREATE LANGUAGE (not by an extension), and subscriptions of
/// this database (their connection string is left out: it may hold a password).
fn languages_and_subscriptions() -> Vec<String> {
    vec![
        format!(
            "SELECT 'language', l.lanname, 'definition', concat_ws(' ', \
             CASE WHEN l.lanpltrusted THEN 'trusted' END, 'handler ' || l.lanplcallfoid::regproc::text, \
             'inline ' || NULLIF(l.laninline, 0)::regproc::text, \
             'validator ' || NULLIF(l.lanvalidator, 0)::regproc::text, \
             'grants ' || {}) || {} || {} FROM pg_language l WHERE l.oid >= 16384 AND {}",
            grants("l.lanacl", "l", "l.lanowner"),
            owner("l.lanowner"),
            comment("l.oid", "pg_language"),
            own("pg_language", "l.oid")
        ),
        format!(
            "SELECT 'subscription', s.subname, 'definition', 'publications ' \
             || array_to_string(s.subpublications, ', ') || CASE WHEN s.subenabled THEN '' \
             ELSE ' disabled' END || {} FROM pg_subscription s \
             WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            owner("s.subowner")
        ),
    ]
}
