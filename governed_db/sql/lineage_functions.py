"""Built-in functions whose result derives only from their arguments (lineage sees through).

Any other function (user-defined, or one that runs SQL given as text, reads
files, large objects or other tables: ``query_to_xml``, ``dblink``,
``lo_get``, ``pg_read_file``, ...) makes the column it feeds ``unknown``.
Set-returning built-ins in FROM have their columns derive from their arguments.
"""

from __future__ import annotations

__all__ = ["KNOWN_FUNCTIONS", "known_function"]

# fmt: off
KNOWN_FUNCTIONS: frozenset[str] = frozenset({
    # strings
    "lower", "upper", "initcap", "substr", "substring", "left", "right", "replace",
    "split_part", "regexp_replace", "regexp_substr", "regexp_match", "regexp_matches",
    "regexp_split_to_array", "regexp_split_to_table", "regexp_count", "regexp_instr",
    "regexp_like", "concat", "concat_ws", "format", "length", "char_length",
    "character_length", "octet_length", "bit_length", "trim", "btrim", "ltrim", "rtrim",
    "lpad", "rpad", "repeat", "reverse", "translate", "overlay", "position", "strpos",
    "starts_with", "md5", "sha224", "sha256", "sha384", "sha512", "encode", "decode",
    "convert", "convert_from", "convert_to", "to_hex", "ascii", "chr", "quote_ident",
    "quote_literal", "quote_nullable", "string_to_array", "string_to_table", "array_to_string",
    "normalize", "unistr", "casefold", "to_ascii", "crc32", "crc32c", "text", "varchar",
    "bpchar", "name", "textlen", "texticlike", "textlike", "like", "ilike", "similar_escape",
    "parse_ident", "soundex", "difference", "levenshtein", "metaphone", "dmetaphone",
    "get_byte", "set_byte", "get_bit", "set_bit", "substring_index", "string_agg",
    # numbers
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "exp", "ln",
    "log", "log10", "power", "pow", "mod", "div", "gcd", "lcm", "width_bucket", "random",
    "scale", "min_scale", "trim_scale", "factorial", "degrees", "radians", "pi", "numeric",
    "int2", "int4", "int8", "float4", "float8", "to_char", "to_number", "to_date",
    "to_timestamp", "greatest", "least", "nullif", "coalesce", "num_nulls", "num_nonnulls",
    # dates
    "now", "current_date", "current_timestamp", "localtimestamp", "clock_timestamp",
    "statement_timestamp", "transaction_timestamp", "date_part", "date_trunc", "date_bin",
    "extract", "age", "make_date", "make_time", "make_timestamp", "make_timestamptz",
    "make_interval", "justify_days", "justify_hours", "justify_interval", "isfinite",
    "timezone", "date_add", "date_subtract",
    # aggregates and windows
    "count", "sum", "avg", "min", "max", "array_agg", "json_agg", "jsonb_agg",
    "json_object_agg", "jsonb_object_agg", "json_agg_strict", "jsonb_agg_strict",
    "json_object_agg_strict", "jsonb_object_agg_strict", "json_object_agg_unique",
    "jsonb_object_agg_unique", "xmlagg", "bool_and", "bool_or", "every", "bit_and", "bit_or",
    "bit_xor", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
    "mode", "percentile_cont", "percentile_disc", "any_value", "range_agg", "range_intersect_agg",
    "corr", "covar_pop", "covar_samp", "regr_avgx", "regr_avgy", "regr_count", "regr_intercept",
    "regr_r2", "regr_slope", "regr_sxx", "regr_sxy", "regr_syy", "rank", "dense_rank",
    "percent_rank", "cume_dist", "row_number", "ntile", "lag", "lead", "first_value",
    "last_value", "nth_value",
    # json
    "to_json", "to_jsonb", "row_to_json", "array_to_json", "json_build_object",
    "jsonb_build_object", "json_build_array", "jsonb_build_array", "json_object", "jsonb_object",
    "json_array_elements", "jsonb_array_elements", "json_array_elements_text",
    "jsonb_array_elements_text", "json_each", "jsonb_each", "json_each_text", "jsonb_each_text",
    "json_extract_path", "jsonb_extract_path", "json_extract_path_text",
    "jsonb_extract_path_text", "json_object_keys", "jsonb_object_keys", "json_array_length",
    "jsonb_array_length", "json_typeof", "jsonb_typeof", "json_strip_nulls", "jsonb_strip_nulls",
    "jsonb_pretty", "jsonb_set", "jsonb_set_lax", "jsonb_insert", "jsonb_path_query",
    "jsonb_path_query_array", "jsonb_path_query_first", "jsonb_path_exists", "jsonb_path_match",
    "json_populate_record", "jsonb_populate_record", "json_populate_recordset",
    "jsonb_populate_recordset", "json_to_record", "jsonb_to_record", "json_to_recordset",
    "jsonb_to_recordset", "jsonb_concat", "json_scalar", "json_serialize", "json",
    "jsonb_path_query_tz", "jsonb_path_exists_tz", "jsonb_path_match_tz",
    "jsonb_path_query_array_tz", "jsonb_path_query_first_tz",
    # arrays, ranges, rows
    "array_append", "array_prepend", "array_cat", "array_remove", "array_replace",
    "array_position", "array_positions", "array_length", "array_lower", "array_upper",
    "array_dims", "array_ndims", "cardinality", "unnest", "array_fill", "trim_array",
    "array_reverse", "array_sort", "array_shuffle", "array_sample", "generate_series",
    "generate_subscripts", "lower_inc", "upper_inc", "lower_inf", "upper_inf", "isempty",
    "range_merge", "int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange",
    "row", "record_eq",
    # xml, text search
    "xmlelement", "xmlforest", "xmlconcat", "xmlparse", "xmlserialize", "xmlroot", "xmlpi",
    "xmlcomment", "xmltext", "xpath", "xpath_exists", "to_tsvector", "to_tsquery",
    "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery", "ts_headline", "ts_rank",
    "ts_rank_cd", "setweight", "strip",
    # misc (values of the session, not of tables)
    "uuid_generate_v4", "gen_random_uuid", "uuidv4", "uuidv7", "current_user", "session_user",
    "current_schema", "version", "pg_typeof", "hashtext", "hashtextextended", "md5_bytea",
    "digest", "hmac", "crypt", "gen_salt", "isnull", "booleq", "bool", "date", "time",
    "timestamp", "timestamptz", "interval", "inet", "cidr", "host", "masklen", "family",
    "network", "netmask", "broadcast", "abbrev", "set_masklen", "inet_client_addr",
})
# fmt: on


def known_function(names: list[str]) -> bool:
    """True for a built-in (``pg_catalog`` or unqualified) whose result derives from its args."""
    if len(names) > 2 or (len(names) == 2 and names[0].lower() != "pg_catalog"):
        return False
    return names[-1].lower() in KNOWN_FUNCTIONS
