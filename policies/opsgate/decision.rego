# data.opsgate.decision: the one document the gate asks for.
#
# Rule files add to two sets: `denials` (each with a priority, the lower the stronger) and `grants`.
# Any denial wins over every grant; with neither, the default deny applies. Priorities are distinct per
# rule so the winning rule is the same on every engine.
#
# Fail closed on the policy's own errors. Every denial check that applies to a call must reach a
# verdict, "deny" or "pass", from facts it could compute. A check whose body errors or meets input or
# data it cannot read has no verdict: allow then is impossible, and the call is denied with
# `policy.check_failed` naming the check. A grant needs every applicable check to have passed.
package opsgate

import rego.v1

# Only the rule files that can apply to this call are evaluated (an evaluation costs per rule).
_rule_denials := caller_denials | _scope_denials

# A check failure needs a check that did not pass: when every check passed, they are not evaluated.
denials := _rule_denials if _checks_passed
else := _rule_denials | check_failures

_scope_denials := read_denials if is_read
else := write_denials | approval_denials if is_write
else := set()

grants := read_grants if is_read
else := write_grants | approval_grants if is_write
else := set()

# Each denial check is a complete rule `_<check>_verdict`: "pass" or "deny", computed from facts, or
# undefined when its body errored or met input or data it cannot read. A check that applies to the
# call and has no verdict is named in `unevaluated` and denies as policy.check_failed; a grant needs
# positive evidence that every check that applies passed (`_checks_passed`). Checks never pass on
# `not <fact>`.
unevaluated contains "caller.unauthenticated" if {
	not _authenticated_verdict
}

unevaluated contains "autonomy.unknown" if {
	not _autonomy_verdict
}

_authenticated_verdict := "pass" if authenticated
else := "deny"

_autonomy_verdict := "pass" if autonomy in {"read-only", "advised", "approved", "autonomous"}
else := "deny"

check_failures contains deny(5, "policy.check_failed", sprintf("policy check %v could not be evaluated (malformed input or policy data); denied to fail closed", [name]), "report this to the policy owners; `opsgate check` validates the policy data") if {
	some name in unevaluated
}

# Checks that did not all pass while no denial says why (a check said deny but its reason could not be
# built): deny all the same.
check_failures contains deny(6, "policy.check_failed", "a policy check denied this call but its reason could not be built; denied to fail closed", "report this to the policy owners") if {
	_known_scope
	not _checks_passed
	count(_rule_denials) == 0
	count(unevaluated) == 0
}

_known_scope if is_read

_known_scope if is_write

# The scope's own checks: read_checks_passed holds only for reads, write_checks_passed only for writes.
_checks_passed if {
	_authenticated_verdict == "pass"
	_autonomy_verdict == "pass"
	read_checks_passed
}

_checks_passed if {
	_authenticated_verdict == "pass"
	_autonomy_verdict == "pass"
	write_checks_passed
}

# Denials and grants in priority order (then by rule and reason). A call rarely has more than one
# denial: that one needs no sort.
_denials_sorted := [[d.priority, d.rule, d.reason, d.alternative, d.require_approval, d.approvers, d.approvals_needed]] if {
	count(denials) == 1
	some d in denials
} else := sort([[d.priority, d.rule, d.reason, d.alternative, d.require_approval, d.approvers, d.approvals_needed] | some d in denials])

_grants_sorted := sort([[g.priority, g.rule, g.reason, g.dry_run_only] | some g in grants])

# A read never has a confirmation or a budget (confirmation_ok and write_budget say so for any call
# that is not a write); the first branch spares reads those rules.
_obligations(dry_run_only) := {
	"max_items": max_items,
	"redact": true,
	"redact_patterns": config.redact_patterns,
	"dry_run_only": dry_run_only,
	"confirmation_ok": false,
	"budget": null,
} if {
	is_read
} else := {
	"max_items": max_items,
	"redact": true,
	"redact_patterns": config.redact_patterns,
	"dry_run_only": dry_run_only,
	"confirmation_ok": confirmation_ok,
	"budget": write_budget,
}

# The allow branches need positive evidence: every check that applies passed, no denial, a grant. They
# are tried first (the common case) and a call rarely has more than one grant; the branches exclude
# each other, so their order changes no decision. When the denials themselves cannot be computed,
# neither an allow nor the deny branch applies: default deny.
decision := {
	"allow": true,
	"reasons": [g.reason],
	"require_approval": false,
	"approvers": [],
	"approvals_needed": 0,
	"alternative": null,
	"rule": g.rule,
	"obligations": _obligations(g.dry_run_only),
} if {
	_checks_passed
	count(caller_denials) == 0
	count(_scope_denials) == 0
	count(grants) == 1
	some g in grants
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
	_checks_passed
	count(caller_denials) == 0
	count(_scope_denials) == 0
	count(grants) > 1
} else := {
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
	"allow": false,
	"reasons": [sprintf("no policy rule allows %v (scope %v) for this caller; denied by default", [tool_name, show(object.get(input, "scope", "(none)"))])],
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
	_authenticated_verdict == "deny"
}

caller_denials contains deny(20, "autonomy.unknown", reason, "fix context.autonomy in the opsgate configuration") if {
	_autonomy_verdict == "deny"
	reason := _autonomy_reason
}

# Reasons are built in rule bodies from values known to be defined (an undefined value in a rule head
# breaks the whole decision on regorus's VM).
_autonomy_reason := sprintf("autonomy level %q is not one of read-only, advised, approved, autonomous", [autonomy]) if {
	is_string(autonomy)
} else := "the autonomy level is missing or not a string; it must be one of read-only, advised, approved, autonomous"
