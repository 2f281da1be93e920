# Inputs shared by the unit tests.
package opsgate_test

import rego.v1

now := "2026-11-23T05:00:00Z"

caller := {"subject": "agent@claude-code", "roles": ["responder"], "client": "claude-code", "authenticated": true, "auth": "local", "scopes": []}

read_input := {
	"tool": "logs_query", "capability": "logs", "scope": "read", "risk": "low",
	"args": {"service": "checkout", "limit": 100},
	"target": {"environment": "prod", "namespace": "shop", "service": "checkout"},
	"facts": {}, "caller": caller, "approval": null,
	"context": {"now": now, "autonomy": "approved", "recent": {}},
}

rollback_input(env, dry_run) := {
	"tool": "rollback_deployment", "capability": "rollback", "scope": "write", "risk": "high",
	"args": {"namespace": "shop", "deployment": "checkout", "to_revision": 6, "dry_run": dry_run},
	"target": {"environment": env, "namespace": "shop", "service": "checkout"},
	"facts": {"from_revision": 7}, "caller": caller, "approval": null,
	"context": {"now": now, "autonomy": "approved", "recent": {"rollback_deployment": {"target_1h": 0, "global_1m": 0, "target_last_s": null}}},
}

prod_write := rollback_input("prod", false)

sre_grant := {"id": "apr_1", "granted_by": "alice", "roles": ["sre"], "kind": "grant", "channel": "ssh-signature"}

with_autonomy(doc, level) := object.union(doc, {"context": object.union(doc.context, {"autonomy": level})})
