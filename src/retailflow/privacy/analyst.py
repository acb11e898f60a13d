"""`retailflow grant analyst ROLE`: a schema of views without personal data, and a role that reads only those.

Analysts need the numbers, not the people: the views cover staging and the analytics and loyalty outputs;
personal columns are dropped, e-mail addresses shown as a***@domain. raw, quarantine, audit and the outbox
are not in the schema, and the role is granted nothing else. Re-running rebuilds the views.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from retailflow import catalog
from retailflow.backends import Backend
from retailflow.errors import UserError

SCHEMA = "analyst"
#: Schemas analysts see through views.
SHARED_SCHEMAS = ("staging", "analytics", "loyalty")


def masked_email(address: ir.StringValue) -> ir.StringValue:
    """a***@domain: the first character and the domain, enough to tell providers apart."""
    at = address.find("@")
    return ibis.ifelse(at > 0, address.left(1) + "***" + address.substr(at), ibis.literal("***"))


def analyst_view(schema: str, table: str, columns: list[str]) -> ir.Table:
    """The view of one table (`columns`: as it has them): its columns without the personal ones its declaration
    (the input model, the catalog) marks, e-mail addresses masked."""
    source = catalog.existing_table(schema, table, columns)
    shown = {}
    for name in columns:
        personal = catalog.personal_column(schema, table, name)
        if personal is None:
            shown[name] = source[name]
        elif personal.masked_as_email:
            shown[name] = masked_email(source[name])
    return source.select(**shown)


def grant_analyst(backend: Backend, role: str) -> list[str]:
    """(Re)create the analyst views and grant `role` (created when missing) read access to them alone."""
    if not backend.capabilities.supports_roles:
        raise UserError(f"{backend.display_url}: this engine has no roles to grant to; "
                        "run grant analyst on PostgreSQL or MySQL/MariaDB")
    views: dict[str, str] = {}
    sources: dict[str, str] = {}
    for schema in SHARED_SCHEMAS:
        for table, columns in backend.schema_columns(schema).items():
            if table in sources:
                raise UserError(f"{schema}.{table} and {sources[table]}.{table} would share the view analyst.{table}")
            sources[table] = schema
            views[table] = backend.compile(analyst_view(schema, table, columns))
    backend.ensure_schema(SCHEMA)
    with backend.transaction():
        for stale in backend.views(SCHEMA):
            backend.execute_built(f"DROP VIEW IF EXISTS {backend.qualified(SCHEMA, stale)}")
        for name, view_sql in views.items():
            backend.execute_built(f"CREATE VIEW {backend.qualified(SCHEMA, name)} AS {view_sql}")
        backend.create_role_if_missing(role)
        backend.grant_schema_read(role, SCHEMA)
    return sorted(views)
