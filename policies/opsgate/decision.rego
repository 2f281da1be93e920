# data.opsgate.decision: the one document the gate asks for.
#
# Rule files add to two sets: `denials` (each with a priority, the lower the stronger) and `grants`.
# Any denial wins over every grant; with neither, the default deny applies. Priorities are distinct per
# rule so the winning rule is the same on every engine.
package opsgate

import rego.v1

# Only the rule files that can apply to this call are evaluated (an evaluation costs per rule).
denials := caller_denials | _scope_denials

_scope_denials := read_denials if is_read
else := write_denials | approval_denials if is_write
else := set()

grants := read_grants if is_read
else := write_grants | approval_grants if is_write
else := set()

_denials_sorted := sort([[d.priority, d.rule, d.reason, d.alternative, d.require_approval, d.approvers, d.approvals_needed] | some d in denials])

_grants_sorted := sort([[g.priority, g.rule, g.reason, g.dry_run_only] | some g in grants])

_obligations(dry_run_only) := {
	"max_items": max_items,
	"redact": true,
	"redact_patterns": config.redact_patterns,
	"dry_run_only": dry_run_only,
	"confirmation_ok": confirmation_ok,
}

decision := {
	"allow": false,
	"reasons": [r[2] | some r in _denials_sorted],
	"require_approval": _denials_sorted[0][4],
	"approvers": _denials_sorted[0][5],
	"approvals_needed": _denials_sorted[0][6],
	"alternative": _denials_sorted[0][3],
	"rule": _denials_sorted[0][1],
	"obligations": _obligations(false),
} if {
	count(denials) > 0
} else := {
	"allow": true,
	"reasons": [r[2] | some r in _grants_sorted],
	"require_approval": false,
	"approvers": [],
	"approvals_needed": 0,
	"alternative": null,
	"rule": _grants_sorted[0][1],
	"obligations": _obligations(_grants_sorted[0][3]),
} if {
	count(grants) > 0
} else := {
	"allow": false,
	"reasons": [sprintf("no policy rule allows %v (scope %v) for this caller; denied by default", [input.tool, input.scope])],
	"require_approval": false,
	"approvers": [],
	"approvals_needed": 0,
	"alternative": null,
	"rule": "default.deny",
	"obligations": _obligations(false),
}

# A plain deny: no approval can lift it.
deny(priority, rule, reason, alternative) := {
	"priority": priority,
	"rule": rule,
	"reason": reason,
	"alternative": alternative,
	"require_approval": false,
	"approvers": [],
	"approvals_needed": 0,
}

grant(priority, rule, reason, dry_run_only) := {
	"priority": priority,
	"rule": rule,
	"reason": reason,
	"dry_run_only": dry_run_only,
}

caller_denials contains deny(10, "caller.unauthenticated", "the caller is not authenticated; every tool needs an authenticated caller", "authenticate to the opsgate server (a bearer token on HTTP, or run it over stdio)") if {
	not authenticated
}

caller_denials contains deny(20, "autonomy.unknown", sprintf("autonomy level %q is not one of read-only, advised, approved, autonomous", [autonomy]), "fix context.autonomy in the opsgate configuration") if {
	not autonomy in known_autonomy
}
