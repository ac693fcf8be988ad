"""Roles and what each may do. Routes ask for a permission, never for a role."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    ANALYST = "analyst"
    AGENT = "agent"
    SELLER_MANAGER = "seller_manager"


class Permission(StrEnum):
    DASHBOARD_READ = "dashboard:read"
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_PII = "customers:pii"  # see and search by email, phone, names, address, birthday
    CUSTOMERS_WRITE = "customers:write"
    USERS_MANAGE = "users:manage"
    TOKENS_OWN = "tokens:own"  # manage one's own API tokens
    SOURCES_MANAGE = "sources:manage"
    AUDIT_READ = "audit:read"
    JOBS_RUN = "jobs:run"
    DATA_IMPORT = "data:import"  # bulk imports (console page, REST upload) and their reports
    SEGMENTS_WRITE = "segments:write"  # create, edit, delete and rebuild segments


_EVERYONE = {Permission.DASHBOARD_READ, Permission.CUSTOMERS_READ, Permission.TOKENS_OWN}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MARKETER: frozenset(_EVERYONE | {Permission.SEGMENTS_WRITE}),
    Role.ANALYST: frozenset(_EVERYONE | {Permission.DATA_IMPORT, Permission.SEGMENTS_WRITE}),
    Role.AGENT: frozenset(_EVERYONE | {Permission.CUSTOMERS_PII, Permission.CUSTOMERS_WRITE}),
    Role.SELLER_MANAGER: frozenset({Permission.DASHBOARD_READ, Permission.TOKENS_OWN}),
}


def roles_with(permission: Permission) -> set[Role]:
    return {role for role, perms in ROLE_PERMISSIONS.items() if permission in perms}


def roles_without(permission: Permission) -> set[Role]:
    return set(Role) - roles_with(permission)
