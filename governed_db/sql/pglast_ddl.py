"""What DDL acts on, read from pglast's parse tree: object kinds and ALTER actions."""

from __future__ import annotations

from typing import Any

from governed_db.sql.vocabulary import Seen

__all__ = ["OBJECT_TYPES", "ddl_facts"]

Node = dict[str, Any]

#: PostgreSQL's ObjectType -> the object kind StatementFacts reports.
OBJECT_TYPES: dict[str, str] = {
    "OBJECT_ACCESS_METHOD": "access_method",
    "OBJECT_AGGREGATE": "aggregate",
    "OBJECT_AMOP": "operator_family",
    "OBJECT_AMPROC": "operator_family",
    "OBJECT_ATTRIBUTE": "type",
    "OBJECT_CAST": "cast",
    "OBJECT_COLUMN": "table",
    "OBJECT_COLLATION": "collation",
    "OBJECT_CONVERSION": "conversion",
    "OBJECT_DATABASE": "database",
    "OBJECT_DEFAULT": "table",
    "OBJECT_DEFACL": "default_privileges",
    "OBJECT_DOMAIN": "domain",
    "OBJECT_DOMCONSTRAINT": "domain",
    "OBJECT_EVENT_TRIGGER": "event_trigger",
    "OBJECT_EXTENSION": "extension",
    "OBJECT_FDW": "foreign_data_wrapper",
    "OBJECT_FOREIGN_SERVER": "server",
    "OBJECT_FOREIGN_TABLE": "foreign_table",
    "OBJECT_FUNCTION": "function",
    "OBJECT_INDEX": "index",
    "OBJECT_LANGUAGE": "language",
    "OBJECT_LARGEOBJECT": "large_object",
    "OBJECT_MATVIEW": "materialized_view",
    "OBJECT_OPCLASS": "operator_class",
    "OBJECT_OPERATOR": "operator",
    "OBJECT_OPFAMILY": "operator_family",
    "OBJECT_PARAMETER_ACL": "parameter",
    "OBJECT_POLICY": "policy",
    "OBJECT_PROCEDURE": "procedure",
    "OBJECT_PUBLICATION": "publication",
    "OBJECT_PUBLICATION_NAMESPACE": "publication",
    "OBJECT_PUBLICATION_REL": "publication",
    "OBJECT_ROLE": "role",
    "OBJECT_ROUTINE": "routine",
    "OBJECT_RULE": "rule",
    "OBJECT_SCHEMA": "schema",
    "OBJECT_SEQUENCE": "sequence",
    "OBJECT_SUBSCRIPTION": "subscription",
    "OBJECT_STATISTIC_EXT": "statistics",
    "OBJECT_TABCONSTRAINT": "table",
    "OBJECT_TABLE": "table",
    "OBJECT_TABLESPACE": "tablespace",
    "OBJECT_TRANSFORM": "transform",
    "OBJECT_TRIGGER": "trigger",
    "OBJECT_TSCONFIGURATION": "text_search_configuration",
    "OBJECT_TSDICTIONARY": "text_search_dictionary",
    "OBJECT_TSPARSER": "text_search_parser",
    "OBJECT_TSTEMPLATE": "text_search_template",
    "OBJECT_TYPE": "type",
    "OBJECT_USER_MAPPING": "user_mapping",
    "OBJECT_VIEW": "view",
}

# Statements that create exactly one kind of object.
_CREATES: dict[str, str] = {
    "CreateStmt": "table",
    "ViewStmt": "view",
    "IndexStmt": "index",
    "CreateSeqStmt": "sequence",
    "CreateSchemaStmt": "schema",
    "CreateExtensionStmt": "extension",
    "CreateTrigStmt": "trigger",
    "CreateEventTrigStmt": "event_trigger",
    "CreatePolicyStmt": "policy",
    "CompositeTypeStmt": "type",
    "CreateEnumStmt": "type",
    "CreateRangeStmt": "type",
    "CreateDomainStmt": "domain",
    "RuleStmt": "rule",
    "CreateCastStmt": "cast",
    "CreateOpClassStmt": "operator_class",
    "CreateOpFamilyStmt": "operator_family",
    "CreatePLangStmt": "language",
    "CreateTransformStmt": "transform",
    "CreateConversionStmt": "conversion",
    "CreateStatsStmt": "statistics",
    "CreatedbStmt": "database",
    "CreateForeignTableStmt": "foreign_table",
    "ImportForeignSchemaStmt": "foreign_table",
    "CreateRoleStmt": "role",
    "AlterRoleStmt": "role",
    "AlterRoleSetStmt": "role",
    "DropRoleStmt": "role",
    "AlterSeqStmt": "sequence",
    "AlterEnumStmt": "type",
    "AlterTypeStmt": "type",
    "AlterDomainStmt": "domain",
    "AlterExtensionStmt": "extension",
    "AlterDatabaseStmt": "database",
    "AlterDatabaseSetStmt": "database",
    "DropdbStmt": "database",
}

# ALTER TABLE subcommands (AlterTableCmd.subtype) -> alter action.
_AT: dict[str, str] = {
    "AT_AddColumn": "add_column",
    "AT_AddColumnToView": "add_column",
    "AT_CookedColumnDefault": "set_default",
    "AT_DropNotNull": "drop_not_null",
    "AT_SetNotNull": "set_not_null",
    "AT_CheckNotNull": "set_not_null",
    "AT_SetExpression": "set_expression",
    "AT_DropExpression": "drop_expression",
    "AT_SetStatistics": "set_statistics",
    "AT_SetOptions": "set_options",
    "AT_ResetOptions": "reset_options",
    "AT_SetStorage": "set_storage",
    "AT_SetCompression": "set_compression",
    "AT_DropColumn": "drop_column",
    "AT_AddIndex": "add_constraint",
    "AT_ReAddIndex": "add_constraint",
    "AT_AddConstraint": "add_constraint",
    "AT_ReAddConstraint": "add_constraint",
    "AT_AddIndexConstraint": "add_constraint",
    "AT_AlterConstraint": "alter_constraint",
    "AT_ValidateConstraint": "validate_constraint",
    "AT_DropConstraint": "drop_constraint",
    "AT_AlterColumnGenericOptions": "set_options",
    "AT_ChangeOwner": "owner",
    "AT_ClusterOn": "cluster_on",
    "AT_DropCluster": "set_without_cluster",
    "AT_SetLogged": "set_logged",
    "AT_SetUnLogged": "set_unlogged",
    "AT_SetAccessMethod": "set_access_method",
    "AT_SetTableSpace": "set_tablespace",
    "AT_SetRelOptions": "set_options",
    "AT_ResetRelOptions": "reset_options",
    "AT_ReplaceRelOptions": "set_options",
    "AT_GenericOptions": "set_options",
    "AT_EnableTrig": "enable_trigger",
    "AT_EnableAlwaysTrig": "enable_trigger",
    "AT_EnableReplicaTrig": "enable_trigger",
    "AT_EnableTrigAll": "enable_trigger",
    "AT_EnableTrigUser": "enable_trigger",
    "AT_DisableTrig": "disable_trigger",
    "AT_DisableTrigAll": "disable_trigger",
    "AT_DisableTrigUser": "disable_trigger",
    "AT_EnableRule": "enable_rule",
    "AT_EnableAlwaysRule": "enable_rule",
    "AT_EnableReplicaRule": "enable_rule",
    "AT_DisableRule": "disable_rule",
    "AT_AddInherit": "inherit",
    "AT_DropInherit": "no_inherit",
    "AT_AddOf": "of_type",
    "AT_DropOf": "not_of",
    "AT_ReplicaIdentity": "replica_identity",
    "AT_EnableRowSecurity": "enable_row_security",
    "AT_DisableRowSecurity": "disable_row_security",
    "AT_ForceRowSecurity": "force_row_security",
    "AT_NoForceRowSecurity": "no_force_row_security",
    "AT_AttachPartition": "attach_partition",
    "AT_DetachPartition": "detach_partition",
    "AT_DetachPartitionFinalize": "detach_partition",
    "AT_AddIdentity": "add_identity",
    "AT_SetIdentity": "set_identity",
    "AT_DropIdentity": "drop_identity",
}


def _alter_action(cmd: Node) -> list[str]:
    subtype = cmd.get("subtype", "")
    if subtype == "AT_ColumnDefault":
        return ["set_default" if cmd.get("def") else "drop_default"]
    if subtype in ("AT_EnableReplicaTrig", "AT_EnableReplicaRule"):
        # fires only for replication sessions: off for every ordinary one
        what = "trigger" if subtype == "AT_EnableReplicaTrig" else "rule"
        return [f"enable_{what}", f"disable_{what}"]
    if subtype == "AT_AlterColumnType":
        column = cmd.get("def", {}).get("ColumnDef", {})
        return ["alter_type", "alter_type_using"] if column.get("raw_default") else ["alter_type"]
    return [_AT.get(subtype, "other")]


def _rename_object(body: Node) -> str:
    kind = body.get("renameType", "")
    if kind in ("OBJECT_COLUMN", "OBJECT_TABCONSTRAINT"):
        relation = body.get("relationType", "")
        if relation == "OBJECT_ACCESS_METHOD":  # the default: not given
            return "table"
        return OBJECT_TYPES.get(relation, "table")
    return OBJECT_TYPES.get(kind, "other")


def ddl_facts(kind: str, body: Node, seen: Seen) -> None:
    """Record the object kinds and ALTER actions of a top-level statement, if it is DDL."""
    objects = seen.objects
    simple = _CREATES.get(kind)
    if simple is not None:
        objects.add(simple)
        if kind == "CreateSchemaStmt":
            for element in body.get("schemaElts", ()):
                ((element_kind, _),) = element.items()
                objects.add(_CREATES.get(element_kind, "other"))
        return
    if kind == "CreateFunctionStmt":
        objects.add("procedure" if body.get("is_procedure") else "function")
    elif kind == "DefineStmt":
        objects.add(OBJECT_TYPES.get(body.get("kind", ""), "other"))
    elif kind == "CreateTableAsStmt":
        objects.add("materialized_view" if body.get("objtype") == "OBJECT_MATVIEW" else "table")
    elif kind == "AlterTableStmt":
        objects.add(OBJECT_TYPES.get(body.get("objtype", ""), "table"))
        for cmd in body.get("cmds", ()):
            seen.alter_actions.update(_alter_action(cmd.get("AlterTableCmd", {})))
    elif kind == "RenameStmt":
        objects.add(_rename_object(body))
        seen.alter_actions.add("rename")
    elif kind == "AlterObjectSchemaStmt":
        objects.add(OBJECT_TYPES.get(body.get("objectType", ""), "other"))
        seen.alter_actions.add("set_schema")
    elif kind == "AlterOwnerStmt":
        objects.add(OBJECT_TYPES.get(body.get("objectType", ""), "other"))
        seen.alter_actions.add("owner")
    elif kind == "AlterFunctionStmt":
        objects.add(OBJECT_TYPES.get(body.get("objtype", ""), "function"))
    elif kind == "DropStmt":
        objects.add(OBJECT_TYPES.get(body.get("removeType", ""), "other"))
    objects.discard("other")
